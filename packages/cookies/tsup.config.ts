import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', scan: 'src/scan.ts', schemas: 'src/schemas.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
