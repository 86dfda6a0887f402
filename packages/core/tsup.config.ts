import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    errors: 'src/errors.ts',
    db: 'src/db/index.ts',
    crypto: 'src/crypto.ts',
    testing: 'src/testing.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'node20',
  external: ['better-sqlite3', 'pg', 'pg-cursor', 'mysql2', 'kysely'],
});
