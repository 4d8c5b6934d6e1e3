/** The pooler mode as the user gives it: the URL's `pooler=`, the option, both (agreeing), nothing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { poolerOption } from '../../src/core/config.js';
import { openDriver } from '../../src/drivers/registry.js';
import { ConfigError } from '../../src/errors.js';

const options = { table: 'lockstep_migrations', runnerId: 'test:1' };

describe('pooler mode', () => {
  it('the option takes transaction, session or none, and nothing else', () => {
    for (const mode of ['transaction', 'session', 'none'] as const) assert.equal(poolerOption(mode), mode);
    assert.equal(poolerOption(undefined), undefined);
    assert.throws(() => poolerOption('transactions'), ConfigError);
    assert.throws(() => poolerOption(''), /invalid pooler ""/);
  });

  it("the URL's pooler= is read, checked and shown in the target, never sent to the server", async () => {
    const pooled = await openDriver('postgres://u:secret@db.example:6432/app?pooler=transaction', options);
    assert.match(pooled.target, /through a transaction-mode pooler/);
    assert.doesNotMatch(pooled.target, /pooler=|secret/);
    const direct = await openDriver('postgres://u@db.example:5432/app', options);
    assert.doesNotMatch(direct.target, /pooler/);
    await assert.rejects(
      openDriver('postgres://u@h/app?pooler=bouncer', options),
      /pooler=bouncer is not a pooler mode/,
    );
  });

  it('the URL and the option must agree', async () => {
    await assert.rejects(
      openDriver('postgres://u@h/app?pooler=session', { ...options, pooler: 'transaction' }),
      /says pooler=session but the pooler option says transaction/,
    );
    const same = await openDriver('postgres://u@h/app?pooler=session', { ...options, pooler: 'session' });
    assert.match(same.target, /session-mode pooler/);
  });

  it('applies to PostgreSQL only', async () => {
    await assert.rejects(
      openDriver('sqlite:db/x.sqlite3', { ...options, pooler: 'transaction' }),
      /applies to PostgreSQL only/,
    );
    await openDriver('sqlite:db/x.sqlite3', { ...options, pooler: 'none' });
  });
});
