import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';

// cli-progress (and its string-width dependencies) loads only when a bar is drawn on a terminal:
// cron and CI, which write to pipes and files, never pay for it.
const require = createRequire(import.meta.url);

/** Where the command writes: process streams in the binary, string sinks in tests. */
export interface TextStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: TextStream;
  stderr: TextStream;
  env: Readonly<Record<string, string | undefined>>;
  /** Directory the config file and relative paths are resolved from. */
  cwd: string;
}

export interface TableColumn<Row> {
  label: string;
  value: (row: Row) => string | number | boolean | null | undefined;
  align?: 'left' | 'right';
}

/** Progress of a long job: a bar on a terminal, plain lines otherwise, always on stderr. */
export interface Progress {
  /** `done` items so far; `total` when it became known; `detail` is a short status. */
  update(done: number, options?: { total?: number; detail?: string }): void;
  stop(): void;
}

/** Renders rows as a plain, aligned text table (no colour, safe to pipe and grep). */
export function formatTable<Row>(rows: readonly Row[], columns: readonly TableColumn<Row>[]): string {
  const cells = rows.map((row) => columns.map((column) => cellText(column.value(row))));
  const widths = columns.map((column, i) =>
    Math.max(column.label.length, ...cells.map((line) => (line[i] as string).length)),
  );
  const render = (line: readonly string[]) =>
    line
      .map((cell, i) =>
        columns[i]?.align === 'right' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  return [
    render(columns.map((column) => column.label)),
    render(widths.map((width) => '-'.repeat(width))),
    ...cells.map(render),
  ].join('\n');
}

function cellText(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  return String(value).replace(/[\r\n\t]+/g, ' ');
}

/**
 * The one place a command writes through. With `--json` stdout carries exactly one JSON
 * document and nothing else; people-facing notes and progress always go to stderr, so a
 * progress bar can never corrupt what a script parses.
 */
export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly io: CliIo;

  constructor(io: CliIo, options: { json?: boolean; quiet?: boolean } = {}) {
    this.io = io;
    this.json = options.json ?? false;
    this.quiet = options.quiet ?? false;
  }

  /** The command's answer: `value` as JSON with `--json`, otherwise the human text. */
  result(value: unknown, human: () => string | readonly string[]): void {
    if (this.json) {
      this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      return;
    }
    const text = human();
    const lines = typeof text === 'string' ? text : text.join('\n');
    if (lines.length > 0) this.io.stdout.write(lines.endsWith('\n') ? lines : `${lines}\n`);
  }

  /** A note for the operator on stderr (suppressed by `--quiet`). */
  note(text: string): void {
    if (!this.quiet) this.io.stderr.write(`${text}\n`);
  }

  /** A warning on stderr, shown even with `--quiet`. */
  warn(text: string): void {
    this.io.stderr.write(`privacykit: warning: ${text}\n`);
  }

  progress(label: string, total?: number): Progress {
    if (this.quiet) return { update() {}, stop() {} };
    const stream = this.io.stderr;
    if (stream.isTTY) return barProgress(stream, label, total);
    return lineProgress(stream, label, total);
  }
}

function barProgress(stream: TextStream, label: string, initialTotal: number | undefined): Progress {
  const { Presets, SingleBar } = require('cli-progress') as typeof cliProgress;
  const bar = new SingleBar(
    {
      stream: stream as NodeJS.WritableStream,
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {detail}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  );
  let total = initialTotal ?? 0;
  bar.start(total, 0, { detail: '' });
  return {
    update(done, options = {}) {
      if (options.total !== undefined && options.total !== total) {
        total = options.total;
        bar.setTotal(total);
      }
      if (done > total) {
        total = done;
        bar.setTotal(total);
      }
      bar.update(done, { detail: options.detail ?? '' });
    },
    stop() {
      bar.stop();
    },
  };
}

function lineProgress(stream: TextStream, label: string, initialTotal: number | undefined): Progress {
  let total = initialTotal;
  let pending = '';
  let last = '';
  let lastAt = 0;
  const flush = () => {
    if (pending === '' || pending === last) return;
    last = pending;
    lastAt = Date.now();
    stream.write(`${pending}\n`);
  };
  return {
    update(done, options = {}) {
      if (options.total !== undefined) total = options.total;
      pending = `${label}: ${done}${total === undefined ? '' : `/${total}`}${options.detail ? ` ${options.detail}` : ''}`;
      // Plain lines for logs: at most one a second, and always the final state on stop().
      if (Date.now() - lastAt >= 1000) flush();
    },
    stop() {
      flush();
    },
  };
}
