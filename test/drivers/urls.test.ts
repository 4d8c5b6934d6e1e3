/**
 * URLs as dbmate and libpq read them, against real servers: sslmode's meanings (the test
 * PostgreSQL has no TLS; a throwaway cluster with a self-signed certificate has), search_path
 * (migrations and the ledger there, direct and through both PgBouncer modes), Unix sockets in
 * dbmate's forms, MySQL's tls= and socket=, go-sql-driver's system variables, SQLite's forms.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { ConfigError, ConnectionError, migrate } from '../../src/index.js';
import { createPooledPostgresDatabase, type PgBouncer, startPgBouncer } from '../helpers/pgbouncer.js';
import { startPrivatePostgres } from '../helpers/private-postgres.js';
import {
  createMysqlDatabase,
  createPostgresDatabase,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const PASSWORD = 'pw-s3cret-x';
const OPTIONS = { table: 'lockstep_migrations', runnerId: 'urls-test' };

/** Connects lockstep's driver to `url`; what the session says about itself. */
async function session(url: string): Promise<{ ssl: boolean; searchPath: string; viaSocket: boolean }> {
  const parts = await createPostgresDriver(url, OPTIONS).connect();
  try {
    const { rows } = await parts.connection.query(
      `SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl,
              current_setting('search_path') AS search_path, inet_client_addr() IS NULL AS via_socket`,
    );
    const row = rows[0] as { ssl: boolean; search_path: string; via_socket: boolean };
    return { ssl: row.ssl, searchPath: row.search_path, viaSocket: row.via_socket };
  } finally {
    await parts.connection.close();
  }
}

/** The URL with its query replaced by `query`. */
const withQuery = (url: string, query: string) => `${url.replace(/\?.*$/, '')}${query ? `?${query}` : ''}`;
/** The URL with a password (the test servers trust every local connection, so any will do). */
const withPassword = (url: string) => url.replace('://postgres@', `://postgres:${PASSWORD}@`);

async function rejects(
  promise: Promise<unknown>,
  kind: typeof ConfigError | typeof ConnectionError,
  message: RegExp,
) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof kind, String(error));
    assert.match((error as Error).message, message);
    assert.ok(
      !(error as Error).message.includes(PASSWORD),
      `the password shows in: ${(error as Error).message}`,
    );
    return true;
  });
}

describe('PostgreSQL sslmode, against a server without TLS', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createPostgresDatabase();
  });
  after(() => db.cleanup());

  for (const query of ['', 'sslmode=prefer', 'sslmode=allow', 'sslmode=disable']) {
    it(`${query || 'no sslmode (prefer)'} connects, in plaintext`, async () => {
      assert.equal((await session(withQuery(db.url, query))).ssl, false);
    });
  }
  for (const mode of ['require', 'verify-ca', 'verify-full']) {
    it(`sslmode=${mode} refuses to connect, saying the server does not accept TLS`, async () => {
      await rejects(
        session(withPassword(withQuery(db.url, `sslmode=${mode}`))),
        ConnectionError,
        new RegExp(`server does not accept TLS connections, and sslmode=${mode} in the URL asks for TLS`),
      );
    });
  }
  it('PGSSLMODE=require when the URL has no sslmode', async () => {
    process.env.PGSSLMODE = 'require';
    try {
      await rejects(session(db.url), ConnectionError, /PGSSLMODE=require asks for TLS/);
    } finally {
      delete process.env.PGSSLMODE;
    }
  });
  it('an unknown sslmode is refused before connecting, the URL shown without its password', async () => {
    await rejects(
      migrate({ url: withPassword(withQuery(db.url, 'sslmode=verify')), dir: db.dir }),
      ConfigError,
      /:\*\*\*@.*sslmode=verify is not an sslmode/,
    );
  });
  it('a URL parameter that is no server setting fails at connect, naming it', async () => {
    await rejects(
      session(withQuery(db.url, 'statment_timeout=5s')),
      ConnectionError,
      /unrecognized configuration parameter "statment_timeout"/,
    );
  });
  it('a server setting in the URL is the session default (as lib/pq sends it)', async () => {
    const parts = await createPostgresDriver(withQuery(db.url, 'work_mem=7MB'), OPTIONS).connect();
    try {
      const { rows } = await parts.connection.query("SELECT current_setting('work_mem') AS w");
      assert.equal(rows[0]?.w, '7MB');
    } finally {
      await parts.connection.close();
    }
  });
});

/** Migrations that show where unqualified names land, after one that changes search_path itself. */
const SEARCH_PATH_MIGRATIONS = {
  '001_first.sql': '-- migrate:up\nCREATE TABLE first_table (id int);\n',
  '002_moves.sql': '-- migrate:up\nSET search_path = public;\nCREATE TABLE moved_table (id int);\n',
  '003_after.sql': '-- migrate:up\nCREATE TABLE after_table (id int);\n',
  '004_nontx.sql':
    '-- migrate:up transaction:false\nCREATE TABLE nontx_table (id int);\nCREATE INDEX nontx_index ON nontx_table (id);\n',
};

async function schemaOf(db: TestDatabase, table: string): Promise<string | undefined> {
  const rows = await db.query('SELECT table_schema FROM information_schema.tables WHERE table_name = $1', [
    table,
  ]);
  return rows.map((r) => String(r.table_schema)).join(',') || undefined;
}

async function assertSearchPathRun(db: TestDatabase) {
  const dir = writeMigrations(db.dir, SEARCH_PATH_MIGRATIONS);
  const result = await migrate({ url: db.url, dir });
  assert.equal(result.applied.length, 4);
  assert.equal(
    await schemaOf(db, 'lockstep_migrations'),
    'app_schema',
    'the ledger lives in the first schema',
  );
  assert.equal(await schemaOf(db, 'first_table'), 'app_schema');
  assert.equal(await schemaOf(db, 'moved_table'), 'public', "the migration's own SET holds for it");
  assert.equal(
    await schemaOf(db, 'after_table'),
    'app_schema',
    'the next migration has the URL search_path again',
  );
  assert.equal(await schemaOf(db, 'nontx_table'), 'app_schema');
  assert.equal((await migrate({ url: db.url, dir })).upToDate, true);
}

describe('PostgreSQL search_path', () => {
  it('direct: the ledger in its first schema (created), migrations run with it', async () => {
    const db = await createPostgresDatabase(
      (name) => `postgres://postgres@127.0.0.1:5432/${name}?search_path=app_schema,public`,
    );
    try {
      await assertSearchPathRun(db);
      const status = await createPostgresDriver(db.url, OPTIONS);
      assert.match(status.target, /ledger app_schema\.lockstep_migrations/);
    } finally {
      await db.cleanup();
    }
  });
  it('a qualified --table wins over search_path, as under dbmate', () => {
    const driver = createPostgresDriver('postgres://h/db?search_path=a,b', { ...OPTIONS, table: 'c.ledger' });
    assert.match(driver.target, /ledger c\.ledger/);
  });
  it('$user first is refused: it names no one schema for the ledger', () => {
    assert.throws(
      () => createPostgresDriver('postgres://h/db?search_path=%22$user%22,public', OPTIONS),
      (error: unknown) => error instanceof ConfigError && /--table <schema>/.test(error.message),
    );
  });

  for (const mode of ['transaction', 'session'] as const) {
    describe(`through a ${mode}-mode PgBouncer`, () => {
      let bouncer: PgBouncer;
      before(async () => {
        bouncer = await startPgBouncer(mode);
      });
      after(() => bouncer.stop());
      it('the same: set by lockstep with its lock, never as a startup parameter', async () => {
        const db = await createPooledPostgresDatabase(
          bouncer,
          `?pooler=${mode}&search_path=app_schema,public`,
        );
        try {
          await (mode === 'transaction'
            ? (async () => {
                // transaction:false needs a session: not through this pooler.
                const { '004_nontx.sql': _, ...rest } = SEARCH_PATH_MIGRATIONS;
                const dir = writeMigrations(db.dir, rest);
                assert.equal((await migrate({ url: db.url, dir })).applied.length, 3);
                assert.equal(await schemaOf(db, 'lockstep_migrations'), 'app_schema');
                assert.equal(await schemaOf(db, 'first_table'), 'app_schema');
                assert.equal(await schemaOf(db, 'moved_table'), 'public');
                assert.equal(await schemaOf(db, 'after_table'), 'app_schema');
              })()
            : assertSearchPathRun(db));
          // Nothing stays set on the pooler's backends for the next client.
          const client = new pg.Client({
            connectionString: bouncer.url(db.url.replace(/^.*\/([^/?]+)\?.*$/, '$1')),
          });
          await client.connect();
          const { rows } = await client.query("SELECT current_setting('search_path') AS p");
          await client.end();
          assert.equal(rows[0]?.p, '"$user", public');
        } finally {
          await db.cleanup();
        }
      });
      it('another server setting in the URL is refused: the pooler passes none', async () => {
        await rejects(
          session(`${bouncer.url('test')}?pooler=${mode}&work_mem=7MB`),
          ConfigError,
          /work_mem cannot reach the server through a/,
        );
      });
    });
  }
});

describe('MySQL URLs', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createMysqlDatabase();
  });
  after(() => db.cleanup());
  const database = () => db.url.replace(/^.*\/([^/?]+)$/, '$1');

  it("dbmate's socket form: mysql://user@/db?socket=/run/mysqld/mysqld.sock", async (t) => {
    if (!existsSync('/run/mysqld/mysqld.sock')) return t.skip('no local MySQL socket');
    const dir = writeMigrations(db.dir, {
      '001_a.sql': '-- migrate:up\nCREATE TABLE via_socket (id int);\n',
    });
    const result = await migrate({ url: `mysql://root@/${database()}?socket=/run/mysqld/mysqld.sock`, dir });
    assert.equal(result.applied.length, 1);
    const [row] = await db.query(
      "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = 'via_socket'",
    );
    assert.equal(Number(row?.n), 1);
  });
  it('tls=preferred connects in plaintext to a server without TLS', async () => {
    const dir = writeMigrations(db.dir, {}, 'empty');
    assert.equal(
      (await migrate({ url: `${db.url}?tls=preferred`, dir, table: 'preferred_ledger' })).upToDate,
      true,
    );
  });
  for (const value of ['true', 'skip-verify']) {
    it(`tls=${value} refuses, saying the server does not accept TLS`, async () => {
      const url = `${db.url.replace('://root@', `://root:${PASSWORD}@`)}?tls=${value}`;
      await rejects(
        migrate({ url, dir: writeMigrations(db.dir, {}, 'empty'), table: 'tls_ledger' }),
        ConnectionError,
        new RegExp(`server does not accept TLS connections, and the URL's tls=${value}`),
      );
    });
  }
  it('an unknown tls= is refused before connecting', async () => {
    await rejects(
      migrate({ url: `${db.url}?tls=custom`, dir: db.dir }),
      ConfigError,
      /tls=custom is not a TLS mode/,
    );
  });
  it("go-sql-driver's other parameters are session system variables, the baseline after each migration", async () => {
    const dir = writeMigrations(
      db.dir,
      {
        '001_seen.sql': '-- migrate:up\nCREATE TABLE seen1 AS SELECT @@SESSION.sql_mode AS m;\n',
        '002_changes.sql':
          "-- migrate:up\nSET SESSION sql_mode = 'STRICT_ALL_TABLES';\nCREATE TABLE seen2 AS SELECT @@SESSION.sql_mode AS m;\n",
        '003_seen.sql': '-- migrate:up\nCREATE TABLE seen3 AS SELECT @@SESSION.sql_mode AS m;\n',
      },
      'vars',
    );
    await migrate({ url: `${db.url}?sql_mode=%27ANSI_QUOTES%27&parseTime=true`, dir, table: 'vars_ledger' });
    const modes = [];
    for (const table of ['seen1', 'seen2', 'seen3'])
      modes.push(String((await db.query(`SELECT m FROM ${table}`))[0]?.m));
    assert.deepEqual(modes, ['ANSI_QUOTES', 'STRICT_ALL_TABLES', 'ANSI_QUOTES']);
  });
  it('a system variable the server does not know fails at connect, naming it', async () => {
    await rejects(migrate({ url: `${db.url}?no_such_var=1`, dir: db.dir }), ConnectionError, /no_such_var/);
  });
});

describe('SQLite URLs as dbmate reads them', () => {
  it('sqlite://dir/file is the absolute /dir/file; sqlite3:/// the same', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-urls-'));
    try {
      const migrations = writeMigrations(dir, { '001_a.sql': '-- migrate:up\nCREATE TABLE a (id int);\n' });
      const file = path.join(dir, 'app.sqlite3');
      await migrate({ url: `sqlite:/${file}`, dir: migrations });
      assert.ok(existsSync(file));
      assert.equal((await migrate({ url: `sqlite3://${file}`, dir: migrations })).upToDate, true);
      assert.equal((await migrate({ url: `sqlite:${file}`, dir: migrations })).upToDate, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('a go-sqlite3 parameter is refused by name', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-urls-'));
    try {
      const migrations = writeMigrations(dir, {});
      await rejects(
        migrate({ url: `sqlite:${dir}/x.db?_foreign_keys=1`, dir: migrations }),
        ConfigError,
        /parameter _foreign_keys /,
      );
      assert.ok(!existsSync(path.join(dir, 'x.db')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A throwaway PostgreSQL cluster with TLS on (a self-signed CA, a server certificate for
 * `localhost` only) and its Unix socket in a temp directory; run as the postgres user.
 */
interface TlsCluster {
  readonly port: number;
  readonly socketDir: string;
  readonly caFile: string;
  stop(): Promise<void>;
}

async function startTlsCluster(): Promise<TlsCluster> {
  const cluster = await startPrivatePostgres({
    label: 'tls',
    prepare: (dir) => {
      const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      ssl([
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '2',
        '-subj',
        '/CN=lockstep test CA',
      ]);
      ssl([
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'server.key',
        '-out',
        'server.csr',
        '-subj',
        '/CN=localhost',
      ]);
      writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=DNS:localhost\n');
      ssl([
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'server.pem',
        '-days',
        '2',
        '-extfile',
        'san.cnf',
      ]);
      execFileSync('chmod', ['600', path.join(dir, 'server.key')]);
      return {
        ssl: 'on',
        ssl_cert_file: path.join(dir, 'server.pem'),
        ssl_key_file: path.join(dir, 'server.key'),
      };
    },
  });
  return {
    port: cluster.port,
    socketDir: cluster.dir,
    caFile: path.join(cluster.dir, 'ca.pem'),
    stop: () => cluster.destroy(),
  };
}

describe('PostgreSQL sslmode, against a server with TLS (a throwaway cluster, self-signed CA)', () => {
  let cluster: TlsCluster;
  before(async () => {
    cluster = await startTlsCluster();
  });
  after(() => cluster?.stop());
  const at = (host: string, query: string) =>
    `postgres://postgres:${PASSWORD}@${host}:${cluster.port}/postgres?${query}`;

  for (const query of ['', 'sslmode=prefer', 'sslmode=require']) {
    it(`${query || 'no sslmode (prefer)'}: TLS, the certificate not checked`, async () => {
      assert.equal((await session(at('127.0.0.1', query))).ssl, true);
    });
  }
  it('sslmode=disable and allow: plaintext', async () => {
    assert.equal((await session(at('127.0.0.1', 'sslmode=disable'))).ssl, false);
    assert.equal((await session(at('127.0.0.1', 'sslmode=allow'))).ssl, false);
  });
  it('verify-ca with the CA: TLS, whatever the host name', async () => {
    assert.equal(
      (await session(at('127.0.0.1', `sslmode=verify-ca&sslrootcert=${cluster.caFile}`))).ssl,
      true,
    );
  });
  it('require with a root certificate checks the chain (libpq)', async () => {
    assert.equal((await session(at('127.0.0.1', `sslmode=require&sslrootcert=${cluster.caFile}`))).ssl, true);
  });
  it('verify-full with the CA and the name the certificate holds: TLS', async () => {
    assert.equal(
      (await session(at('localhost', `sslmode=verify-full&sslrootcert=${cluster.caFile}`))).ssl,
      true,
    );
  });
  it('verify-full by another name is refused, saying why', async () => {
    await rejects(
      session(at('127.0.0.1', `sslmode=verify-full&sslrootcert=${cluster.caFile}`)),
      ConnectionError,
      /certificate was not accepted under sslmode=verify-full in the URL/,
    );
  });
  it('verify-ca without the CA is refused (a self-signed chain)', async () => {
    await rejects(
      session(at('127.0.0.1', 'sslmode=verify-ca')),
      ConnectionError,
      /certificate was not accepted under sslmode=verify-ca/,
    );
  });
  it('a root certificate file that cannot be read is named', async () => {
    await rejects(
      session(at('127.0.0.1', 'sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem')),
      ConfigError,
      /sslrootcert file \/nonexistent\/ca\.pem/,
    );
  });

  describe('Unix sockets, in the forms dbmate README shows (no TLS over a socket, as in libpq)', () => {
    const forms = () => [
      `postgres://postgres:${PASSWORD}@/postgres?socket=${cluster.socketDir}&port=${cluster.port}`,
      `postgres://postgres@/postgres?host=${cluster.socketDir}&port=${cluster.port}&sslmode=require`,
      `postgres:///postgres?socket=${encodeURIComponent(cluster.socketDir)}&port=${cluster.port}&user=postgres`,
    ];
    for (const index of [0, 1, 2]) {
      it(`form ${index + 1}`, async () => {
        const seen = await session(forms()[index] as string);
        assert.deepEqual([seen.viaSocket, seen.ssl], [true, false], forms()[index]);
      });
    }
  });
});
