import type { Command } from 'commander';
import type { ProgramKit } from '../program.js';

export function registerRequests(_program: Command, _kit: ProgramKit): void {}
