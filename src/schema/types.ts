import type { Scrub } from '../util/secrets.js';

/** lockstep's own tables, left out of the schema file, and dbmate's ledger, whose versions end it. */
export interface OwnTables {
  readonly ledger: string;
  readonly async: string;
  readonly dbmate: string;
}

/** What every tool run of one command shares. */
export interface RunBase {
  readonly cwd: string;
  readonly scrub: Scrub;
  /** Passed to the dump tool before the database (dbmate's `dump -- <args>`). */
  readonly extraArgs: readonly string[];
}

/** One database's schema file: its dump as dbmate writes it, and its load. */
export interface SchemaTarget {
  dump(url: string, tables: OwnTables, run: RunBase): Promise<string>;
  load(url: string, file: string, run: RunBase): Promise<void>;
}
