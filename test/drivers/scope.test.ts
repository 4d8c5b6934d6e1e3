/** The session scope every command runs in: one session, the lock held and always released, no secret in an error. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ifLockFree, SessionScope, whileLocked } from '../../src/core/scope.js';
import { TARGETS } from '../helpers/targets.js';

const noEvents = () => {};

for (const target of TARGETS) {
  describe(`session scope: ${target.kind}`, () => {
    it('releases the lock when the work throws, and never runs work while another holds it', async () => {
      const db = await target.create();
      try {
        const scope = new SessionScope({
          url: db.url,
          table: 'lockstep_migrations',
          runnerId: 'test:1',
          caller: undefined,
        });
        await scope.withSession(async (session, driver) => {
          const lock = { timeoutMs: 5_000, target: driver.target, on: noEvents };
          await assert.rejects(
            whileLocked(session.lock, lock, async () => {
              throw new Error('work failed');
            }),
            /work failed/,
          );
          await scope.withSession(async (other) => {
            assert.equal(await ifLockFree(other.lock, async () => 'ran'), 'ran', 'the lock was released');
            await whileLocked(session.lock, lock, async () => {
              assert.equal(await ifLockFree(other.lock, async () => 'ran'), undefined, 'held: not run');
            });
          }, driver);
        });
      } finally {
        await db.cleanup();
      }
    });

    it('gives the result for the work when the wait ends with nothing left to do', async () => {
      const db = await target.create();
      try {
        const scope = new SessionScope({
          url: db.url,
          table: 'lockstep_migrations',
          runnerId: 'test:1',
          caller: undefined,
        });
        await scope.withSession(async (holder, driver) => {
          assert.equal(await holder.lock.tryLock(), true);
          await scope.withSession(async (waiter) => {
            const lock = {
              timeoutMs: 5_000,
              target: driver.target,
              on: noEvents,
              nothingLeft: async () => true,
              doneElsewhere: () => 'done elsewhere',
            };
            const result = await whileLocked(waiter.lock, lock, async () => 'ran');
            assert.equal(result, 'done elsewhere');
          }, driver);
          await holder.lock.release();
        });
      } finally {
        await db.cleanup();
      }
    });
  });
}

describe('session scope', () => {
  it('shows the target without its password, and scrubs it from what a command throws', async () => {
    const url = 'postgres://app:s3cret-pass@127.0.0.1:1/nowhere';
    const scope = new SessionScope({
      url,
      table: 'lockstep_migrations',
      runnerId: 'test:1',
      caller: undefined,
    });
    assert.doesNotMatch(scope.target, /s3cret-pass/);
    await assert.rejects(
      scope.command(async () => {
        throw new Error(`cannot reach ${url} (password s3cret-pass)`);
      }),
      (error: Error) => !error.message.includes('s3cret-pass'),
    );
  });
});
