import path from 'node:path';
import { DEFAULT_DOWN_STEPS } from '../defaults.js';
import type { Dialect, Driver, LedgerRow, Session } from '../drivers/driver.js';
import {
  AdoptRefusedError,
  AsyncRequiredError,
  ConfigError,
  DirtyStateError,
  FailedWhileWaitingError,
  formatSourceProblem,
  HistoryError,
  type LockHolder,
  LockstepError,
  PoolerRefusedError,
  ResolveRefusedError,
  SourceError,
  UnadoptedHistoryError,
} from '../errors.js';
import { transactionControl } from '../sql/transaction-control.js';
import { asWritten } from '../util/duration.js';
import {
  type AdoptionReport,
  keepingAdoptedRollbacks,
  notAdopted,
  planAdoption,
  toolsToCheck,
} from './adopt.js';
import { type LockstepOptions, type ResolvedConfig, resolveConfig } from './config.js';
import { DbmateHistory } from './dbmate.js';
import { runMigration, stepRunsInTransaction } from './execute.js';
import { guardProcessExit } from './exit-guard.js';
import { settleInFlight } from './in-flight.js';
import { leftHalfDoneBy, resolvedRow } from './ledger-rows.js';
import { compareVersions, type Migration, type Step } from './migration.js';
import {
  describeStatus,
  failedInThisWave,
  planDown,
  planUp,
  type StatusEntry,
  type UpPlan,
  WAVE_WINDOW_MS,
} from './plan.js';
import { planResolve, type ResolveAs } from './resolve.js';
import { SessionScope, whileLocked } from './scope.js';
import { readMigrations } from './sources.js';
import { type Deadline, deadline } from './time-limits.js';
import type { ToolName } from './tools/tool.js';

/** A command that a transaction-mode pooler cannot carry goes through the direct URL instead. */
const HAND_OFF = Symbol('hand off to the direct URL');

export interface AppliedMigration {
  readonly version: string;
  readonly name: string;
  readonly durationMs: number;
}

export interface AppliedElsewhere {
  readonly version: string;
  readonly name: string;
  /** `host:pid` of the runner that applied it while this one waited. */
  readonly by: string;
  readonly at: string | null;
}

export interface UpResult {
  /** Migrations this runner applied, in order. */
  readonly applied: AppliedMigration[];
  /** Migrations another runner applied while this one waited for the lock. */
  readonly appliedByOthers: AppliedElsewhere[];
  /** True when nothing was pending (at once, or after waiting). */
  readonly upToDate: boolean;
  readonly waitedMs: number;
  /** Migrations applied in total now. */
  readonly total: number;
}

export interface DownResult {
  readonly rolledBack: AppliedMigration[];
  readonly waitedMs: number;
}

export interface StatusResult {
  readonly target: string;
  readonly migrations: StatusEntry[];
  readonly lockHolder: LockHolder | null;
  readonly ledgerExists: boolean;
}

export interface AdoptResult extends AdoptionReport {
  /** Nothing was written: what adopting would do (`--dry-run`). */
  readonly dryRun: boolean;
}

export interface ResolveResult {
  readonly version: string;
  readonly resolvedAs: 'applied' | 'rolled-back';
  readonly previousState: string | null;
}

/**
 * The runner: `up`, `down`, `status` and `resolve` against one ledger. Each call opens one
 * session, does its work on it (under the lock when it changes anything) and closes it.
 */
export class Migrator {
  readonly #config: ResolvedConfig;
  readonly #scope: SessionScope;

  readonly #requirements: RequirementStates | undefined;
  readonly #options: LockstepOptions;

  /**
   * `requirements` reads the long-running migrations a migration `requires`; the public entry
   * point provides it (core does not depend on the long-running side). Without it such a
   * migration is refused.
   */
  constructor(options: LockstepOptions = {}, requirements?: RequirementStates) {
    this.#config = resolveConfig(options);
    this.#options = options;
    this.#requirements = requirements;
    const config = this.#config;
    this.#scope = new SessionScope({
      url: config.url,
      table: config.table,
      runnerId: config.runnerId,
      caller: config.caller,
      pooler: config.pooler,
      coordinatorUrl: config.coordinatorUrl,
      onQuery: options.on === undefined ? undefined : (sql) => config.on({ type: 'query', sql }),
      onNotice: (message) => config.on({ type: 'notice', message }),
    });
  }

  /** The migration files; what dbmate accepts and lockstep reads more strictly, as notices. */
  #readMigrations(): Promise<Migration[]> {
    const { dir, cwd, on } = this.#config;
    return readMigrations(dir, cwd, (w) =>
      on({ type: 'notice', message: `warning: ${formatSourceProblem(w)}` }),
    );
  }

  /** SPEC "The run": applies every pending migration, exactly once, whoever else runs at the same time. */
  up(): Promise<UpResult> {
    return this.#scope.command(async () => {
      const config = this.#config;
      const migrations = await this.#readMigrations();
      const outcome = await this.#scope.withSession(async (session, driver) => {
        // Fast path: one query, no lock, when nothing is pending (SPEC "The run", step 2); a
        // second when dbmate's history is followed.
        const dbmate = DbmateHistory.of(session, driver, config);
        const read = await session.ledger.read();
        await dbmate?.look(read);
        // What dbmate applied counts as seen at the start: adopted, not applied by another runner.
        const before = dbmate?.view(read, migrations) ?? read;
        const first = planUp(migrations, before ?? [], config);
        const problems = [...first.problems, ...(dbmate?.problems(read) ?? [])];
        if (problems.length > 0) throw new HistoryError(problems);
        if (nothingToDo(read, first) && !dbmate?.owes(read, migrations))
          return upToDate(config, before, before, 0);
        // Something to do: dbmate's table, if it is there, is followed (outside any transaction);
        // another tool's history the ledger lacks is refused, never run a second time.
        await dbmate?.look(read, true);
        await refuseNotAdopted(session, driver, config, migrations, read);
        return this.#applyPending(
          session,
          driver,
          migrations,
          dbmate?.view(read, migrations) ?? read,
          dbmate,
        );
      });
      return outcome === HAND_OFF ? this.#direct().up() : outcome;
    });
  }

  /**
   * Takes the lock and applies what is pending, as decided under it. A lock held until the
   * commit (a transaction-mode pooler) is taken again for each migration, and everything
   * decided again under it; HAND_OFF when such a lock cannot carry a pending migration and a
   * direct URL can, before anything was changed.
   */
  async #applyPending(
    session: Session,
    driver: Driver,
    migrations: readonly Migration[],
    before: readonly LedgerRow[] | null,
    dbmate: DbmateHistory | undefined,
  ): Promise<UpResult | typeof HAND_OFF> {
    const config = this.#config;
    const perMigration = session.lock.heldUntil === 'commit';
    const previousRows = new Map((before ?? []).map((r) => [r.version, r]));
    const applied: AppliedMigration[] = [];
    const appliedByOthers: AppliedElsewhere[] = [];
    const steps = new Map<string, Step>();
    let runDeadline: Deadline | undefined;
    let waited = 0;
    let total = 0;
    /** Applied migrations in `rows` that neither this runner applied nor were reported yet. */
    const reportOthers = (rows: readonly LedgerRow[]) => {
      const known = new Set([...applied, ...appliedByOthers].map((m) => m.version));
      for (const other of newlyApplied(before ?? [], rows).filter((m) => !known.has(m.version))) {
        config.on({ type: 'applied-by-other', ...other });
        appliedByOthers.push(other);
      }
      total = countApplied(rows);
    };
    for (;;) {
      const lock = {
        ...this.#lock(driver),
        nothingLeft: async () => {
          const latest = await session.ledger.read();
          const plan = planUp(migrations, dbmate?.view(latest, migrations) ?? latest ?? [], config);
          if (!nothingToDo(latest, plan) || dbmate?.owes(latest, migrations)) return false;
          reportOthers(latest ?? []);
          return true;
        },
        // Another runner applied everything while this one waited: done, without the lock.
        doneElsewhere: (waitedMs: number) => {
          waited += waitedMs;
          return 'done' as const;
        },
      };
      const unit = await whileLocked(session.lock, lock, async (waitedMs) => {
        waited += waitedMs;
        runDeadline ??= deadline(config.runTimeoutMs);
        await dbmate?.refresh();
        const read = await session.ledger.read();
        const found = dbmate ? await dbmate.settle(session.ledger, read, migrations) : read;
        const rows = found ?? [];
        const plan = planUp(migrations, rows, config);
        if (plan.dirty) throw await dirtyError(plan.dirty, migrations, driver, session, config);
        const problems = [...plan.problems, ...(dbmate?.problems(rows) ?? [])];
        if (problems.length > 0) throw new HistoryError(problems);
        reportOthers(rows);
        if (plan.pending.length === 0) return 'done';
        // A runner of the wave that just saw the next migration fail refuses before it pays for
        // loading anything: the waiters behind one failure pass the lock on at once.
        refuseIfFailedInThisWave(plan.pending[0] as Migration, rows, previousRows);
        // Load (modules: import) everything pending before changing anything, so a bad file
        // changes nothing; after locking, so runners that find the work done never pay for it.
        const unloaded = plan.pending.filter((m) => !steps.has(m.version));
        if (unloaded.length > 0) {
          const loaded = await loadSteps(unloaded, 'up', driver, importLimit(config, runDeadline));
          await checkRequirements(unloaded, loaded, this.#requirements, session, driver, config.asyncTable);
          for (const [version, step] of loaded) steps.set(version, step);
        }
        if (perMigration && this.#needsSession(plan.pending, steps, driver, 'up', applied.length === 0))
          return HAND_OFF;
        if (!found) await session.ledger.create();

        const run = { session: keeping(session, dbmate, config.runnerId), driver, config, runDeadline };
        for (const migration of perMigration ? plan.pending.slice(0, 1) : plan.pending) {
          const row = rows.find((r) => r.version === migration.version);
          refuseIfFailedInThisWave(migration, rows, previousRows);
          const step = steps.get(migration.version) as Step;
          const durationMs = await runMigration(run, migration, step, 'up', row);
          applied.push({ version: migration.version, name: migration.name, durationMs });
          total++;
        }
        return perMigration && plan.pending.length > 1 ? 'more' : 'done';
      });
      if (unit === HAND_OFF) return HAND_OFF;
      if (unit === 'done') break;
    }
    if (applied.length === 0) config.on({ type: 'up-to-date', applied: total });
    return { applied, appliedByOthers, upToDate: applied.length === 0, waitedMs: waited, total };
  }

  /**
   * Under a lock held until the commit, a migration that cannot run in a transaction is refused,
   * before anything is changed; true when the direct URL is there to run the whole command instead
   * (`unchanged`: this command has changed nothing yet).
   */
  #needsSession(
    pending: readonly Migration[],
    steps: ReadonlyMap<string, Step>,
    driver: Driver,
    direction: 'up' | 'down',
    unchanged: boolean,
  ): boolean {
    const outside = pending.find((m) => !stepRunsInTransaction(driver, steps.get(m.version) as Step));
    if (!outside) return false;
    if (this.#config.directUrl && unchanged) return true;
    throw new PoolerRefusedError({
      reason: 'not-transactional',
      version: outside.version,
      file: outside.file,
      message:
        `migration ${outside.version} (${outside.file}) runs outside a transaction (${direction}), and through a ` +
        'transaction-mode pooler (pooler=transaction) nothing can hold the lock across its statements. ' +
        `${unchanged ? 'Nothing was changed' : `What this command ${direction === 'up' ? 'applied' : 'rolled back'} before it stays so`}.\n` +
        `  fix: give a URL that reaches PostgreSQL itself (or a session-mode pooler) as --direct-url (directUrl): ` +
        `lockstep then runs the command through it; or run lockstep ${direction} once with --url set to such a URL`,
    });
  }

  /** The same command through the direct URL: a session lock, which excludes the pooled runners' too. */
  #direct(): Migrator {
    const { client: _client, pooler: _pooler, directUrl, ...options } = this.#options;
    return new Migrator({ ...options, url: directUrl }, this.#requirements);
  }

  /**
   * Rolls back the newest `steps` applied migrations (default 1), newest first, under the lock
   * (a lock held until the commit: taken again for each).
   */
  down(options: { readonly steps?: number } = {}): Promise<DownResult> {
    return this.#scope.command(async () => {
      const steps = options.steps ?? DEFAULT_DOWN_STEPS;
      if (!Number.isInteger(steps) || steps < 1)
        throw new ConfigError(`--steps must be a whole number ≥ 1, got ${steps}`);
      const config = this.#config;
      const migrations = await this.#readMigrations();
      const sources = new Map(migrations.map((m) => [m.version, m]));
      const rolledBack: AppliedMigration[] = [];
      let waited = 0;
      const outcome = await this.#scope.withSession(async (session, driver) => {
        const perMigration = session.lock.heldUntil === 'commit';
        const dbmate = DbmateHistory.of(session, driver, config);
        await dbmate?.look(await session.ledger.read(), true);
        let runDeadline: Deadline | undefined;
        while (rolledBack.length < steps) {
          const unit = await whileLocked(session.lock, this.#lock(driver), async (waitedMs) => {
            waited += waitedMs;
            runDeadline ??= deadline(config.runTimeoutMs);
            await dbmate?.refresh();
            const read = await session.ledger.read();
            const rows = (dbmate ? await dbmate.settle(session.ledger, read, migrations) : read) ?? [];
            const dirty = planUp(migrations, rows, {
              allowChanged: true,
              allowMissing: true,
              allowOutOfOrder: true,
            }).dirty;
            if (dirty) throw await dirtyError(dirty, migrations, driver, session, config);
            const targets = planDown(rows, perMigration ? 1 : steps - rolledBack.length);
            const missing = targets.filter((r) => !sources.get(r.version)?.hasDown);
            if (missing.length > 0) {
              throw new SourceError(
                missing.map((r) => ({
                  file: sources.get(r.version)?.file ?? `${r.version}_${r.name}`,
                  problem: sources.has(r.version)
                    ? (sources.get(r.version)?.noDown ??
                      'exports no down(ctx) function: it cannot be rolled back')
                    : 'is applied but its file is missing: it cannot be rolled back',
                })),
              );
            }
            const chosen = targets.map((r) => sources.get(r.version) as Migration);
            const loaded = await loadSteps(chosen, 'down', driver, importLimit(config, runDeadline));
            if (perMigration && this.#needsSession(chosen, loaded, driver, 'down', rolledBack.length === 0))
              return HAND_OFF;
            const run = { session: keeping(session, dbmate, config.runnerId), driver, config, runDeadline };
            for (const row of targets) {
              const migration = sources.get(row.version) as Migration;
              const step = loaded.get(row.version) as Step;
              if (step.kind === 'sql' && step.statements.length === 0)
                config.on({
                  type: 'notice',
                  message: `${migration.file}: its down section is empty or absent: rolling it back only removes its ledger row (as dbmate does)`,
                });
              // Where the down is a file of its own (golang-migrate), failures name that file.
              const shown = step.kind === 'sql' && step.file ? { ...migration, file: step.file } : migration;
              const durationMs = await runMigration(run, shown, step, 'down', row);
              rolledBack.push({ version: row.version, name: row.name, durationMs });
            }
            return perMigration && targets.length > 0 ? 'more' : 'done';
          });
          if (unit !== 'more') return unit;
        }
        return 'done';
      });
      if (outcome === HAND_OFF) return this.#direct().down({ steps });
      return { rolledBack, waitedMs: waited };
    });
  }

  /** Every migration with its state, and the current lock holder. Takes no lock. */
  status(): Promise<StatusResult> {
    return this.#scope.command(async () => {
      const migrations = await this.#readMigrations();
      return this.#scope.withSession(async (session, driver) => {
        const rows = await session.ledger.read();
        const dbmate = DbmateHistory.of(session, driver, this.#config);
        await dbmate?.look(rows);
        const lockHolder = await session.lock.holder();
        return {
          target: driver.target,
          migrations: describeStatus(migrations, dbmate?.view(rows, migrations) ?? rows ?? []),
          lockHolder,
          ledgerExists: rows !== null,
        };
      });
    });
  }

  /**
   * Takes another tool's history into the ledger, under the lock: what it applied as applied
   * (adopted: never run), what it left half-done as failed. Runs no migration. Again, it adds
   * only what the ledger lacks, so racing runs adopt once.
   */
  adopt(
    from: ToolName,
    options: { readonly table?: string | undefined; readonly dryRun?: boolean | undefined } = {},
  ): Promise<AdoptResult> {
    return this.#scope.command(async () => {
      const config = this.#config;
      const migrations = await this.#readMigrations();
      const dir = path.resolve(config.cwd, config.dir);
      return this.#scope.withSession(async (session, driver) => {
        if (driver.dialect.noTransactions)
          throw new ConfigError(
            `adopt: lockstep keeps no ledger on ${driver.dialect.name} itself; adopt into the coordinator is not supported`,
          );
        const { toolHistory } = await import('./tools/index.js');
        const history = toolHistory(from, session.connection, driver.dialect, options.table);
        // Read first without the lock: a table that is not there is said without taking it (and,
        // under a transaction-mode pooler's lock, a failing read would end the transaction).
        const seen = await history.read(dir, migrations);
        if (seen === null) {
          throw new AdoptRefusedError(
            `${from}'s ${history.table} is not on ${driver.target}: nothing to adopt, nothing was changed.` +
              (from === 'golang-migrate'
                ? ` (A ${history.table} without a dirty column is dbmate's: lockstep follows that one by itself.)`
                : '') +
              `\n  fix: check --url, or name the table with --from-table <name> if ${from} was told another one`,
          );
        }
        const now = new Date().toISOString();
        if (options.dryRun) {
          const plan = planAdoption(from, history.table, seen, await session.ledger.read(), migrations, now);
          return { ...plan.report, dryRun: true };
        }
        return whileLocked(session.lock, this.#lock(driver), async () => {
          const state = (await history.read(dir, migrations)) ?? seen;
          const rows = await session.ledger.read();
          const plan = planAdoption(from, history.table, state, rows, migrations, now);
          if (plan.writes.length > 0 && rows === null) await session.ledger.create();
          for (const { row, expected } of plan.writes) await session.ledger.write(row, expected);
          return { ...plan.report, dryRun: false };
        });
      });
    });
  }

  /**
   * Records by hand what a person decided about an interrupted or failed migration:
   * `applied` (its effects are in place) or `rolled-back` (they are not; the row is removed).
   * Any other state is refused (planResolve says why and what instead) unless `force`.
   */
  resolve(
    version: string,
    as: ResolveAs,
    options: { readonly force?: boolean | undefined } = {},
  ): Promise<ResolveResult> {
    return this.#scope.command(async () => {
      const config = this.#config;
      if (!/^\d+$/.test(version))
        throw new ConfigError(`resolve takes a migration version (digits), got "${version}"`);
      const migrations = await this.#readMigrations();
      const source = migrations.find((m) => compareVersions(m.version, version) === 0);
      return this.#scope.withSession(async (session, driver) => {
        const dbmate = DbmateHistory.of(session, driver, config);
        await dbmate?.look(await session.ledger.read(), true);
        const ledger = keeping(session, dbmate, config.runnerId).ledger;
        return whileLocked(session.lock, this.#lock(driver), async () => {
          await dbmate?.refresh();
          const rows = await ledger.read();
          const found = rows?.find((r) => compareVersions(r.version, version) === 0);
          const row = found && (await this.#settled(found, session, driver));
          const action = planResolve(version, row, source, as, options.force ?? false);
          if (action === 'write-applied') {
            if (!rows) await ledger.create();
            const by = `${config.runnerId} (resolve --applied${options.force ? ' --force' : ''})`;
            const now = new Date().toISOString();
            await ledger.write(resolvedRow(version, row, source, by, now), row ?? null);
          } else if (row) {
            await ledger.delete(row);
          }
          return { version, resolvedAs: as, previousState: row?.state ?? null };
        });
      });
    });
  }

  /**
   * An interrupted row as it stands once what its runner left on the server has ended (waited
   * for, or cancelled with cancelOrphans): resolve never records a statement that still runs.
   */
  async #settled(row: LedgerRow, session: Session, driver: Driver): Promise<LedgerRow> {
    const config = this.#config;
    const settled = await settleInFlight(session, driver.dialect.ledger.table, row, {
      cancel: config.cancelOrphans,
      maxMs: config.lockTimeoutMs,
      on: config.on,
    });
    if (settled?.inFlight.outcome === 'still-running') {
      throw new ResolveRefusedError({
        version: row.version,
        state: 'running',
        requested: 'applied',
        message:
          `statement ${settled.inFlight.statement} of migration ${row.version} (query id ${settled.inFlight.queryId}) ` +
          'still runs on the server: resolve cannot say how it ends. Wait for it, or cancel it with ' +
          '--cancel-orphans. Nothing was changed.',
      });
    }
    return settled?.row ?? row;
  }

  /** How this runner waits for the migration lock on `driver`'s database. */
  #lock(driver: Driver) {
    return { timeoutMs: this.#config.lockTimeoutMs, target: driver.target, on: this.#config.on };
  }

  /** The database URL with its password hidden. */
  get target(): string {
    return this.#scope.target;
  }
}

async function loadSteps(
  migrations: readonly Migration[],
  direction: 'up' | 'down',
  driver: Driver,
  limit: ImportLimit | undefined,
) {
  const steps = new Map<string, Step>();
  const problems: SourceError['problems'][number][] = [];
  for (const migration of migrations) {
    // Importing a module runs its top level: it must not end the process, nor hang, either.
    const exits = guardProcessExit();
    try {
      const step = await withinLimit(migration.load(direction, driver.dialect.syntax), migration, limit);
      steps.set(migration.version, step);
      problems.push(...transactionControlProblems(migration, step, driver));
      // It called process.exit() at its top level and caught what that threw: still refused.
      if (exits.attempt) problems.push({ file: migration.file, problem: exits.attempt.message });
    } catch (error) {
      if (error instanceof SourceError) problems.push(...error.problems);
      else throw error;
    } finally {
      exits.release();
    }
  }
  if (problems.length > 0) throw new SourceError(problems);
  return steps;
}

/**
 * A SQL migration that lockstep runs in a transaction must not begin or end one itself: a COMMIT
 * in it would make a later failure roll back only part of it while lockstep reported it all undone.
 */
function transactionControlProblems(migration: Migration, step: Step, driver: Driver) {
  if (step.kind !== 'sql' || !stepRunsInTransaction(driver, step)) return [];
  return step.statements.flatMap((statement) => {
    const verb = transactionControl(statement.sql);
    if (!verb) return [];
    return [
      {
        file: migration.file,
        line: statement.line,
        problem:
          `${verb}: lockstep runs this migration in a transaction and commits it together with its ledger row; ` +
          'remove the statement, or put transaction:false on its -- migrate: line to run its statements as written',
      },
    ];
  });
}

interface ImportLimit {
  readonly name: string;
  readonly at: number;
}

/** A module's import (its top level) runs under the run's limits; its own `timeout` is not known yet. */
function importLimit(config: ResolvedConfig, runDeadline: Deadline | undefined): ImportLimit | undefined {
  const limits: ImportLimit[] = [];
  const ms = config.migrationTimeoutMs;
  if (ms !== null) limits.push({ name: `--migration-timeout ${asWritten(ms)}`, at: performance.now() + ms });
  if (runDeadline) limits.push({ name: `--run-timeout ${asWritten(runDeadline.ms)}`, at: runDeadline.at });
  return limits.sort((a, b) => a.at - b.at)[0];
}

async function withinLimit<T>(loading: Promise<T>, migration: Migration, limit: ImportLimit | undefined) {
  if (!limit) return loading;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new SourceError([
            {
              file: migration.file,
              problem: `its import did not finish within ${limit.name} (a top-level await that never settles?)`,
            },
          ]),
        ),
      Math.max(0, limit.at - performance.now()),
    );
  });
  try {
    return await Promise.race([loading, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The state of each long-running migration in a store table, read on the run's session. */
export interface RequirementStates {
  read(
    session: Session,
    sql: Dialect,
    table: string,
  ): Promise<ReadonlyMap<string, { readonly state: string; readonly progress: number }>>;
}

/** A pending migration that requires long-running migrations runs only once they are completed. */
async function checkRequirements(
  pending: readonly Migration[],
  steps: Map<string, Step>,
  requirements: RequirementStates | undefined,
  session: Session,
  driver: Driver,
  asyncTable: string,
): Promise<void> {
  const requiring = pending.filter((m) => steps.get(m.version)?.settings.requires?.length);
  if (requiring.length === 0) return;
  if (!requirements) {
    const first = requiring[0] as Migration;
    throw new ConfigError(
      `migration ${first.version} (${first.file}) requires long-running migrations, but this runner ` +
        "cannot read them: use the Migrator exported by 'lockstep' (or the CLI). Nothing was changed.",
    );
  }
  const states = await requirements.read(session, driver.dialect, asyncTable);
  for (const migration of requiring) {
    const unmet = (steps.get(migration.version)?.settings.requires ?? [])
      .map((name) => ({ name, state: 'not_started', progress: 0, ...states.get(name) }))
      .filter((r) => r.state !== 'completed');
    if (unmet.length > 0)
      throw new AsyncRequiredError({ version: migration.version, file: migration.file, required: unmet });
  }
}

/** Nothing pending, failed or running, and the history checks out. */
/** A migration that failed in this runner's wave is not run again by it (see failedInThisWave). */
function refuseIfFailedInThisWave(
  migration: Migration,
  rows: readonly LedgerRow[],
  seenAtStart: ReadonlyMap<string, LedgerRow>,
): void {
  const row = rows.find((r) => r.version === migration.version);
  if (!row || !failedInThisWave(row, seenAtStart.get(migration.version), migration.checksum, Date.now()))
    return;
  throw new FailedWhileWaitingError({
    version: migration.version,
    file: migration.file,
    by: row.appliedBy,
    at: row.finishedAt ?? row.startedAt,
    recordedError: row.error ?? 'unknown error',
    retryAfterMs: WAVE_WINDOW_MS,
  });
}

/**
 * The session, its ledger writing dbmate's table too where this run keeps it, and keeping a row
 * for a migration adopted from another tool when it is rolled back.
 */
function keeping(session: Session, dbmate: DbmateHistory | undefined, runnerId: string): Session {
  const ledger = keepingAdoptedRollbacks(session.ledger, runnerId);
  return { ...session, ledger: dbmate ? dbmate.ledger(ledger) : ledger };
}

function nothingToDo(rows: readonly LedgerRow[] | null, plan: UpPlan): boolean {
  return rows !== null && plan.pending.length === 0 && !plan.dirty && plan.problems.length === 0;
}

/** The result of a run that found everything applied, at once or after waiting. */
function upToDate(
  config: ResolvedConfig,
  before: readonly LedgerRow[] | null,
  now: readonly LedgerRow[] | null,
  waitedMs: number,
): UpResult {
  const rows = now ?? [];
  const appliedByOthers = newlyApplied(before ?? [], rows);
  for (const other of appliedByOthers) config.on({ type: 'applied-by-other', ...other });
  config.on({ type: 'up-to-date', applied: countApplied(rows) });
  return { applied: [], appliedByOthers, upToDate: true, waitedMs, total: countApplied(rows) };
}

function countApplied(rows: readonly LedgerRow[]): number {
  return rows.filter((r) => r.state === 'applied').length;
}

function newlyApplied(before: readonly LedgerRow[], after: readonly LedgerRow[]) {
  const known = new Set(before.filter((r) => r.state === 'applied').map((r) => r.version));
  return after
    .filter((r) => r.state === 'applied' && !known.has(r.version))
    .map((r) => ({ version: r.version, name: r.name, by: r.appliedBy, at: r.finishedAt }));
}

async function dirtyError(
  found: LedgerRow,
  migrations: readonly Migration[],
  driver: Driver,
  session: Session,
  config: ResolvedConfig,
): Promise<DirtyStateError> {
  const settled = await settleInFlight(session, driver.dialect.ledger.table, found, {
    cancel: config.cancelOrphans,
    maxMs: config.lockTimeoutMs,
    on: config.on,
  });
  const row = settled?.row ?? found;
  const migration = migrations.find((m) => m.version === row.version);
  let reachedLine: number | undefined;
  if (migration?.kind === 'sql' && migration.checksum === row.checksum) {
    const step = await migration.load(row.direction, driver.dialect.syntax).catch(() => undefined);
    if (step?.kind === 'sql') reachedLine = step.statements[row.statementsDone]?.line;
  }
  return new DirtyStateError({
    version: row.version,
    file: migration?.file ?? `${row.version}_${row.name}`,
    state: row.state === 'failed' ? 'failed' : 'running',
    direction: row.direction,
    statementsDone: row.statementsDone,
    statementCount: row.statementCount ?? undefined,
    reachedLine,
    by: row.appliedBy,
    adoptedFrom: leftHalfDoneBy(row),
    since: row.startedAt,
    recordedError: row.error ?? undefined,
    leftovers: (await session.leftovers?.().catch(() => [])) ?? [],
    inFlight: settled?.inFlight,
  });
}

/**
 * Before `up` changes anything: another tool's table (golang-migrate, goose, knex, ...) that
 * records migrations the ledger has no row for is refused; running them would apply them twice.
 * Looked at where it can matter (toolsToCheck); a refusal reads the ledger once more first, in
 * case another runner adopted them meanwhile.
 */
async function refuseNotAdopted(
  session: Session,
  driver: Driver,
  config: ResolvedConfig,
  migrations: readonly Migration[],
  rows: readonly LedgerRow[] | null,
): Promise<void> {
  if (driver.dialect.noTransactions) return;
  const tools = toolsToCheck(rows);
  if (tools.length === 0) return;
  // Loaded only here: the path every worker takes at boot never pays for the other tools' readers.
  const { toolHistory } = await import('./tools/index.js');
  const dir = path.resolve(config.cwd, config.dir);
  for (const tool of tools) {
    const history = toolHistory(tool, session.connection, driver.dialect);
    const state = await history.read(dir, migrations);
    if (state === null || notAdopted(state, rows).length === 0) continue;
    const versions = notAdopted(state, await session.ledger.read());
    if (versions.length > 0) throw new UnadoptedHistoryError({ tool, table: history.table, versions });
  }
}

export { LockstepError };
