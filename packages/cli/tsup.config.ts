import { defineConfig } from 'tsup';

export default defineConfig({
  // The library (createProgram, runCli, …) for ESM and CJS; `bin` is the `privacykit` command
  // (package.json "bin" points at the ESM build).
  entry: { index: 'src/index.ts', bin: 'src/bin.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'node20',
});
