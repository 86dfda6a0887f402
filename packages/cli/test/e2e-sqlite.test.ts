import { testEngines } from '@privacykit/core/testing';
import { it } from 'vitest';
import { engineSuite } from './engine-suite.js';

// One file per engine, so vitest runs the engines in parallel (skipped when not configured).
const engines = testEngines().filter((engine) => engine.engine === 'sqlite');
if (engines.length === 0) it.skip('sqlite: set its PRIVACYKIT_TEST_* URL to run', () => {});
for (const engine of engines) engineSuite(engine);
