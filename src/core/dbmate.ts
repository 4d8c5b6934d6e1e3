/**
 * dbmate's ledger beside lockstep's (README "Coming from dbmate"). What dbmate applied is adopted
 * into the ledger under the lock, once, and never run again; from then on (or from the start, in
 * `keep` mode) every migration lockstep applies or rolls back is written into dbmate's table too,
 * so that dbmate, run again, finds the database as lockstep left it.
 */
import { DbmateTable } from '../drivers/dbmate-table.js';
import type { DbmateMirror, Driver, Ledger, LedgerRow, Session } from '../drivers/driver.js';
import type { HistoryProblem } from '../errors.js';
import type { ResolvedConfig } from './config.js';
import type { EventHandler } from './events.js';
import { adoptedRow } from './ledger-rows.js';
import { compareVersions, type Migration } from './migration.js';

/** Who applied an adopted migration, as its ledger row says. */
export const DBMATE = 'dbmate';

/** dbmate's table as the history uses it: lockstep's own reader and writer, or a driver's mirror. */
type DbmateLedgerTable = Pick<DbmateTable, 'name' | 'versions' | 'create' | 'add' | 'remove'>;

/**
 * A mirror the driver keeps in line with the ledger (ClickHouse): read for what dbmate applied;
 * never written here, the driver writes it after every change of the ledger.
 */
function readOnly(mirror: DbmateMirror): DbmateLedgerTable {
  const nothing = async () => {};
  return {
    name: mirror.name,
    versions: () => mirror.versions(),
    create: nothing,
    add: nothing,
    remove: nothing,
  };
}

export class DbmateHistory {
  readonly #table: DbmateLedgerTable;
  /** The driver keeps dbmate's table itself: nothing to write, and a lag is its to set right. */
  readonly #mirrored: boolean;
  readonly #keep: boolean;
  readonly #on: EventHandler;
  /** dbmate's versions as last read; null: not read, or dbmate has no table here. */
  #versions: Set<string> | null = null;
  #looked = false;

  private constructor(table: DbmateLedgerTable, mirrored: boolean, keep: boolean, on: EventHandler) {
    this.#table = table;
    this.#mirrored = mirrored;
    this.#keep = keep;
    this.#on = on;
  }

  /**
   * The history of this session's database; undefined when off. Where the driver mirrors the
   * ledger into dbmate's table (ClickHouse), what dbmate applied there is adopted and the driver
   * keeps the table; elsewhere lockstep reads and writes it over the connection.
   */
  static of(session: Session, driver: Driver, config: ResolvedConfig): DbmateHistory | undefined {
    if (config.dbmate === 'off') return undefined;
    if (session.dbmateMirror)
      return new DbmateHistory(readOnly(session.dbmateMirror), true, false, config.on);
    if (driver.dialect.noTransactions) return undefined;
    const table = new DbmateTable(session.connection, driver.dialect, config.dbmateTable);
    return new DbmateHistory(table, false, config.dbmate === 'keep', config.on);
  }

  /**
   * Reads dbmate's table, where it is there to follow: always in `keep` mode and before a change
   * (`changing`: an up with something to do, a down, a resolve), and on the no-op path only where
   * the ledger shows it is followed (no ledger yet, or a migration adopted from it) — so the path
   * every worker takes at boot costs lockstep's own projects nothing. Once per command.
   */
  async look(rows: readonly LedgerRow[] | null, changing = false): Promise<void> {
    if (this.#looked) return;
    const follows = rows === null || rows.some((r) => r.appliedBy === DBMATE);
    // A driver's mirror is read only where it can hold what dbmate applied: the first run, or
    // after an adoption (the driver keeps it in line with every change itself).
    if (this.#mirrored ? !follows : !this.#keep && !changing && !follows) return;
    this.#looked = true;
    const versions = await this.#table.versions();
    this.#versions = versions && new Set(versions);
  }

  /**
   * Under the lock, reads again what `look` found. A table `look` did not find is not read: in a
   * transaction (a transaction-mode pooler's lock) a failing statement would end it.
   */
  async refresh(): Promise<void> {
    if (this.#versions) this.#versions = new Set((await this.#table.versions(true)) ?? []);
  }

  /**
   * The ledger as planning and status see it: what dbmate applied and the ledger lacks counts as
   * applied, adopted (with no finish time yet: it is adopted under the lock).
   */
  view(rows: readonly LedgerRow[] | null, migrations: readonly Migration[]): LedgerRow[] | null {
    const adopt = this.#toAdopt(rows, migrations).map((r) => ({ ...r, finishedAt: null }));
    if (adopt.length === 0) return rows === null ? null : [...rows];
    const adopted = new Set(adopt.map((r) => r.version));
    return [...(rows ?? []).filter((r) => !adopted.has(r.version)), ...adopt];
  }

  /** Whether there is anything to write under the lock: versions to adopt, or dbmate's table to create (`keep`). */
  owes(rows: readonly LedgerRow[] | null, migrations: readonly Migration[]): boolean {
    return this.#toAdopt(rows, migrations).length > 0 || (this.#keep && this.#versions === null);
  }

  /**
   * What lockstep applied and dbmate's table lacks. lockstep records a version there with the
   * ledger's final write (in its transaction, or before it, where the migration has none), so
   * this is not a runner's crash: dbmate rolled it back, or someone removed it. Which one is a
   * person's call, never lockstep's.
   */
  problems(rows: readonly LedgerRow[] | null): HistoryProblem[] {
    if (!this.#versions || this.#mirrored) return [];
    const name = this.#table.name;
    return (rows ?? [])
      .filter((r) => r.state === 'applied' && !this.#versions?.has(r.version))
      .map((r) => ({
        kind: 'dbmate',
        version: r.version,
        name: r.name,
        detail:
          `is applied (by ${r.appliedBy}) but dbmate's ${name} lacks it. If dbmate rolled it back: ` +
          `lockstep resolve ${r.version} --rolled-back --force (lockstep applies it again at the next up); ` +
          `if its row was removed by hand: INSERT INTO ${name} (version) VALUES ('${r.version}')`,
      }));
  }

  /**
   * Under the lock: adopts what dbmate applied into the ledger; in `keep` mode, creates dbmate's
   * table where it is missing and records there what lockstep applied. Returns the ledger as now.
   */
  async settle(
    ledger: Ledger,
    rows: readonly LedgerRow[] | null,
    migrations: readonly Migration[],
  ): Promise<readonly LedgerRow[] | null> {
    if (!this.owes(rows, migrations)) return rows;
    const adopt = this.#toAdopt(rows, migrations);
    if (rows === null) await ledger.create();
    let unrecorded: string[] = [];
    if (this.#versions === null) {
      await this.#table.create();
      this.#versions = new Set();
      unrecorded = (rows ?? []).filter((r) => r.state === 'applied').map((r) => r.version);
    }
    for (const row of adopt) {
      await ledger.write(row, rows?.find((r) => r.version === row.version) ?? null);
    }
    if (adopt.length > 0) {
      this.#on({
        type: 'adopted',
        from: DBMATE,
        table: this.#table.name,
        versions: adopt.map((r) => r.version),
      });
    }
    if (unrecorded.length > 0) {
      for (const version of unrecorded) await this.#record(version);
      this.#on({
        type: 'notice',
        message: `created dbmate's ${this.#table.name} and recorded there what lockstep applied: ${unrecorded.join(', ')}`,
      });
    }
    return ledger.read();
  }

  /** The session's ledger, writing dbmate's table too when this run keeps it. */
  ledger(inner: Ledger): Ledger {
    if (this.#mirrored || (this.#versions === null && !this.#keep)) return inner;
    return {
      read: () => inner.read(),
      create: () => inner.create(),
      // dbmate's table changes with the ledger's final write: in its transaction, or just before
      // it, while the ledger still says `running`: a runner that dies in between leaves the dirty
      // state, and resolve (which writes both) settles them together.
      write: async (row, expected) => {
        if (row.state === 'applied' && !this.#versions?.has(row.version)) await this.#record(row.version);
        await inner.write(row, expected);
      },
      delete: async (expected) => {
        if (this.#versions?.has(expected.version)) {
          await this.#table.remove(expected.version);
          this.#versions.delete(expected.version);
        }
        await inner.delete(expected);
      },
    };
  }

  async #record(version: string): Promise<void> {
    await this.#table.add(version);
    this.#versions?.add(version);
  }

  /** dbmate's versions the ledger does not have applied (nor in progress: that is for resolve). */
  #toAdopt(rows: readonly LedgerRow[] | null, migrations: readonly Migration[]): LedgerRow[] {
    if (!this.#versions) return [];
    const byVersion = new Map((rows ?? []).map((r) => [r.version, r]));
    const sources = new Map(migrations.map((m) => [m.version, m]));
    const now = new Date().toISOString();
    return [...this.#versions]
      .filter((v) => {
        const state = byVersion.get(v)?.state;
        return state === undefined || state === 'rolled_back';
      })
      .sort(compareVersions)
      .map((v) => adoptedRow(v, sources.get(v), DBMATE, now));
  }
}
