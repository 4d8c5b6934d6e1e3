import type { MigrationContext } from '../../../src/index.js';

// A TypeScript migration, run without a build step. It takes a moment, so the other
// workers visibly wait for it instead of running it again.
export async function up(ctx: MigrationContext): Promise<void> {
  await ctx.query("INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada')");
  await new Promise((resolve) => setTimeout(resolve, 400));
  await ctx.query('UPDATE users SET name = email WHERE name IS NULL');
}

export async function down(ctx: MigrationContext): Promise<void> {
  await ctx.query("DELETE FROM users WHERE email = 'ada@example.com'");
}
