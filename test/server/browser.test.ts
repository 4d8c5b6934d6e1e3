/**
 * The status page in a real browser (Debian's Chromium, driven by playwright-core): enter the
 * token, click Run on a long-running migration, watch its progress bar move to 100% and its tag
 * turn completed, click Rollback and see it rolled back. LOCKSTEP_SCREENSHOT=<file.png> saves a
 * screenshot of the page mid-run (the README's).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { AsyncMigrator } from '../../src/async/migrator.js';
import { type RunningServer, serve } from '../../src/server/serve.js';
import { writeDefinitions } from '../helpers/async.js';
import {
  createPostgresDatabase,
  runCli,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const CHROMIUM = process.env.LOCKSTEP_TEST_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123456789';
const ROWS = 3000;

describe('status page in Chromium', {
  skip: !TARGETS.some((t) => t.kind === 'postgres') && 'postgres is not among LOCKSTEP_TEST_TARGETS',
}, () => {
  let db: TestDatabase;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`,
    );
    db = await createPostgresDatabase();
    const migrations = writeMigrations(db.dir, {
      '20261120090000_create_users.sql':
        '-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n',
      '20261121090000_add_email_lower.sql': '-- migrate:up\nALTER TABLE users ADD COLUMN email_lower text;\n',
      '20261124090000_email_lower_not_null.sql':
        '-- migrate:up requires:0001_backfill_email_lower\nALTER TABLE users ALTER COLUMN email_lower SET NOT NULL;\n',
    });
    await runCli(
      [
        'up',
        '--url',
        db.url,
        '--dir',
        writeMigrations(
          db.dir,
          {
            '20261120090000_create_users.sql':
              '-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n',
            '20261121090000_add_email_lower.sql':
              '-- migrate:up\nALTER TABLE users ADD COLUMN email_lower text;\n',
          },
          'applied',
        ),
      ],
      { cwd: db.dir },
    );
    await db.query(
      `INSERT INTO users (id, email) SELECT g, 'User' || g || '@Example.com' FROM generate_series(1, ${ROWS}) g`,
    );
    const dir = writeDefinitions(db.dir, {
      '0001_backfill_email_lower.sql': `-- async:description Fill users.email_lower, for case-insensitive logins
-- async:parameter batch_size 100 keys per batch
-- async:operation batched table:users key:id batch_size:{{batch_size}} pause:120ms
UPDATE users SET email_lower = lower(email) WHERE id >= :start AND id < :end AND email_lower IS NULL;
-- async:rollback
UPDATE users SET email_lower = NULL WHERE id >= :start AND id < :end;
`,
      '0002_rebuild_search_index.sql': `-- async:description Rebuild the search index
-- async:operation
INSERT INTO search_documents SELECT id, email FROM users;
-- async:rollback
`,
      '0003_drop_legacy_columns.sql': `-- async:description Drop the legacy columns
-- async:depends_on 0001_backfill_email_lower
-- async:operation
SELECT 1;
-- async:rollback
`,
    });
    // One that failed earlier, with its error row to expand.
    const lrm = new AsyncMigrator({ url: db.url, dir, cwd: db.dir });
    await lrm.trigger('0002_rebuild_search_index');
    await lrm.wait('0002_rebuild_search_index').catch(() => {});
    server = await serve({
      url: db.url,
      dir: migrations,
      asyncDir: dir,
      token: TOKEN,
      worker: true,
      port: 0,
      cwd: db.dir,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1180, height: 640 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('dialog', (d) => void d.accept());
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await db?.cleanup();
  });

  const row = (name: string) => page.locator(`tr[data-run="${name}"]`);
  const progress = async (name: string) => Number(await row(name).locator('progress').getAttribute('value'));
  const tag = (name: string) => row(name).locator('.tag').first();

  it('shows the migrations, the lock and the long-running migrations, with buttons only for what the state allows', async () => {
    await page.goto(server.url);
    await page.locator('tr[data-version="20261121090000"]').waitFor();
    assert.equal(await page.locator('tr[data-version="20261121090000"] .tag').textContent(), 'applied');
    assert.equal(await page.locator('tr[data-version="20261124090000"] .tag').textContent(), 'pending');
    assert.equal(await page.locator('#lock').textContent(), 'Migration lock: free');
    assert.equal(await tag('0002_rebuild_search_index').textContent(), 'errored');
    const buttons = async (name: string) => row(name).locator('button').allTextContents();
    assert.deepEqual(await buttons('0002_rebuild_search_index'), ['Resume', 'Rollback']);
    assert.deepEqual(await buttons('0001_backfill_email_lower'), ['Run']);
    assert.equal(
      await row('0001_backfill_email_lower').locator('input[data-param="batch_size"]').inputValue(),
      '100',
    );

    // The error row expands.
    const details = page.locator('tr[data-details="0002_rebuild_search_index"] details');
    await details.locator('summary').click();
    await page
      .getByText(/relation "search_documents" does not exist/)
      .first()
      .waitFor();
  });

  it('Run: the progress bar moves to 100% and the tag turns completed; Rollback: rolled back', async () => {
    await page.fill('#token', TOKEN);
    await row('0001_backfill_email_lower').locator('button[data-action="trigger"]').click();
    // Moving: seen between 0 and 100 at least twice, increasing.
    const seen: number[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && seen.length < 2) {
      const p = await progress('0001_backfill_email_lower');
      if (p > 0 && p < 100 && p !== seen.at(-1)) seen.push(p);
      await page.waitForTimeout(150);
    }
    assert.equal(seen.length, 2, `the bar moved: ${seen}`);
    assert.ok((seen[1] as number) > (seen[0] as number));
    assert.deepEqual(await row('0001_backfill_email_lower').locator('button').allTextContents(), [
      'Stop',
      'Force stop',
    ]);
    if (process.env.LOCKSTEP_SCREENSHOT)
      await page.screenshot({ path: process.env.LOCKSTEP_SCREENSHOT, fullPage: true });

    await page.waitForFunction(
      (name) => document.querySelector(`tr[data-run="${name}"] .tag`)?.textContent === 'completed',
      '0001_backfill_email_lower',
      { timeout: 60_000 },
    );
    assert.equal(await progress('0001_backfill_email_lower'), 100);
    const [{ n }] = (await db.query('SELECT COUNT(*) AS n FROM users WHERE email_lower IS NULL')) as [
      { n: string },
    ];
    assert.equal(Number(n), 0);

    await row('0001_backfill_email_lower').locator('button[data-action="rollback"]').click();
    await page.waitForFunction(
      (name) => document.querySelector(`tr[data-run="${name}"] .tag`)?.textContent === 'rolled back',
      '0001_backfill_email_lower',
      { timeout: 60_000 },
    );
    assert.equal(await progress('0001_backfill_email_lower'), 0);
    assert.match(
      (await page.locator('#message').textContent()) ?? '',
      /0001_backfill_email_lower: completed → rolling_back/,
    );
    const [{ m }] = (await db.query('SELECT COUNT(*) AS m FROM users WHERE email_lower IS NOT NULL')) as [
      { m: string },
    ];
    assert.equal(Number(m), 0);
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
  });

  it('a refused action says why, in the page', async () => {
    await page.fill('#token', 'not-the-token-at-all');
    await row('0003_drop_legacy_columns').locator('button[data-action="trigger"]').click();
    await page.getByText('0003_drop_legacy_columns: wrong token (401)').waitFor();
    await page.fill('#token', TOKEN);
    await row('0003_drop_legacy_columns').locator('button[data-action="trigger"]').click();
    await page
      .getByText(
        /cannot trigger 0003_drop_legacy_columns: it depends on 0001_backfill_email_lower, which is rolled_back.*\(409\)/,
      )
      .waitFor();
  });
});
