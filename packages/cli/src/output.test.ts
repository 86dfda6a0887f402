import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';
import { Output, formatTable } from './output.js';
import type { CliIo, TextStream } from './output.js';

function sink(isTTY = false): TextStream & { text: string } {
  const stream = {
    text: '',
    isTTY,
    columns: 80,
    write(chunk: string) {
      stream.text += chunk;
      return true;
    },
    // What cli-progress calls on a terminal.
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
    on: () => stream,
    removeListener: () => stream,
  };
  return stream;
}

describe('Output', () => {
  it('with --json writes exactly one JSON document on stdout, progress bars go to stderr', () => {
    const stdout = sink();
    const stderr = sink(true);
    const io: CliIo = { stdout, stderr, env: {}, cwd: '.' };
    const out = new Output(io, { json: true });
    const progress = out.progress('sweep', 10);
    for (let done = 1; done <= 10; done++) progress.update(done, { detail: 'logs → logins' });
    progress.stop();
    out.note('a note');
    out.result({ records: 10 }, () => 'human text');
    expect(JSON.parse(stdout.text)).toEqual({ records: 10 });
    expect(stderr.text).toContain('sweep');
    expect(stderr.text).toContain('a note');
  });

  it('prints plain progress lines when stderr is not a terminal, and nothing with --quiet', () => {
    const stderr = sink(false);
    const out = new Output({ stdout: sink(), stderr, env: {}, cwd: '.' });
    const progress = out.progress('erase', 3);
    progress.update(1);
    progress.update(3);
    progress.stop();
    expect(stderr.text.trim().split('\n').at(-1)).toBe('erase: 3/3');
    expect(stderr.text).not.toContain('\u001b');
    const quiet = sink(false);
    const silent = new Output({ stdout: sink(), stderr: quiet, env: {}, cwd: '.' }, { quiet: true });
    silent.progress('erase', 3).update(3);
    expect(quiet.text).toBe('');
  });
});

describe('formatTable', () => {
  it('aligns columns and folds newlines inside cells', () => {
    const text = formatTable(
      [
        { name: 'a', n: 1 },
        { name: 'long\nname', n: 100 },
      ],
      [
        { label: 'NAME', value: (row) => row.name },
        { label: 'N', value: (row) => row.n, align: 'right' },
      ],
    );
    expect(text.split('\n')).toEqual([
      'NAME         N',
      '---------  ---',
      'a            1',
      'long name  100',
    ]);
  });
});

describe('parseDuration', () => {
  it('reads every unit', () => {
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('2w')).toBe(14 * 86_400_000);
    expect(parseDuration('36h')).toBe(36 * 3_600_000);
    expect(parseDuration('90m')).toBe(90 * 60_000);
    expect(parseDuration('500ms')).toBe(500);
  });

  it('rejects anything else with a usage error', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        if (/^\s*\d+(\.\d+)?(ms|s|m|h|d|w)\s*$/.test(text)) return;
        expect(() => parseDuration(text)).toThrow(
          expect.objectContaining({ code: 'cli/usage', message: expect.stringMatching(/is not a duration/) }),
        );
      }),
    );
  });
});
