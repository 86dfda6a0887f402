import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The library (createProgram, runCli, …) for ESM and CJS, and the ESM-only binary.
    entry: { index: 'src/index.ts', bin: 'src/bin.ts' },
    format: ['esm'],
    dts: { entry: { index: 'src/index.ts' } },
    sourcemap: true,
    clean: true,
    target: 'node20',
  },
  {
    entry: { index: 'src/index.ts' },
    format: ['cjs'],
    dts: { entry: { index: 'src/index.ts' } },
    sourcemap: true,
    shims: true,
    target: 'node20',
  },
]);
