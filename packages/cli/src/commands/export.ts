import type { Command } from 'commander';
import type { ProgramKit } from '../program.js';

export function registerExport(_program: Command, _kit: ProgramKit): void {}
