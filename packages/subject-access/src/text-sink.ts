import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, pipeline } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Text gathered before one write: big enough to amortise stream overhead, small enough to stay flat. */
const FLUSH_AT = 128 * 1024;
/** Bytes an entry may hold ahead of the zip writer, so rows keep flowing while deflate runs on the thread pool. */
const ENTRY_BUFFER = 1024 * 1024;

/** Waits for `drain`, failing if the stream closes first (listeners removed either way). */
function drained(target: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      target.off('drain', onDrain);
      target.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('export stream closed'));
    };
    target.on('drain', onDrain);
    target.on('close', onClose);
  });
}

/** Path, size and SHA-256 of one file of the package, as the manifest lists it. */
export interface FileDigest {
  path: string;
  bytes: number;
  sha256: string;
}

/**
 * Buffered UTF-8 text written to a stream with backpressure, hashing what it writes: every file
 * of an export passes through one, so the manifest's digests are of exactly the bytes shipped.
 * Text is encoded straight into a chunk buffer (no joining of pieces, no intermediate string);
 * `write` returns a promise only when the target asks the writer to wait, so a row costs no
 * promise at all while the target keeps up.
 */
export class TextSink {
  private buffer = Buffer.allocUnsafe(FLUSH_AT);
  private used = 0;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private waiting: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly target: Writable,
  ) {}

  /** Appends `text`; when a promise is returned, await it before the next write. */
  write(text: string): Promise<void> | undefined {
    // A UTF-16 code unit never takes more than 3 bytes in UTF-8 (a surrogate pair: 4 for 2).
    const worst = text.length * 3;
    if (worst > this.buffer.length - this.used) {
      this.ship();
      if (worst > this.buffer.length) {
        this.emit(Buffer.from(text, 'utf8'));
        return this.waiting;
      }
    }
    this.used += this.buffer.write(text, this.used, 'utf8');
    return this.waiting;
  }

  /** Sends the buffered bytes to the target (waiting for it to drain if it asks to). */
  async flush(): Promise<void> {
    this.ship();
    if (this.waiting) await this.waiting;
  }

  /** Flushes and ends the target (unless `end: false`); returns the file's digest. */
  async close(options: { end?: boolean } = {}): Promise<FileDigest> {
    await this.flush();
    if (options.end !== false) this.target.end();
    return { path: this.path, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  private ship(): void {
    if (this.used === 0) return;
    const chunk = this.buffer.subarray(0, this.used);
    this.buffer = Buffer.allocUnsafe(FLUSH_AT);
    this.used = 0;
    this.emit(chunk);
  }

  private emit(chunk: Buffer): void {
    if (this.target.destroyed) throw new Error('export stream closed');
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (!this.target.write(chunk) && !this.waiting) {
      const waiting = drained(this.target).finally(() => {
        this.waiting = undefined;
      });
      // Whoever writes next awaits it; a stream closed meanwhile is reported there, not as unhandled.
      waiting.catch(() => {});
      this.waiting = waiting;
    }
  }
}

/** A sink whose bytes become one zip entry (yazl reads the pass-through when the entry's turn comes). */
export function entrySink(path: string): { sink: TextSink; stream: PassThrough } {
  const stream = new PassThrough({ highWaterMark: ENTRY_BUFFER });
  return { sink: new TextSink(path, stream), stream };
}

/**
 * A file's text spooled to a temporary file while another zip entry is being written — yazl
 * writes entries one after the other, so a table's CSV cannot flow while its JSON does without
 * either holding every row in memory or reading the table twice. The spool is encrypted with a
 * key that lives only in memory (AES-256-GCM) and deleted as soon as it has been read, so
 * personal data never rests in clear on disk.
 */
export class Spool {
  readonly file: string;
  readonly sink: TextSink;
  private readonly key = randomBytes(32);
  private readonly iv = randomBytes(12);
  private readonly cipher = createCipheriv('aes-256-gcm', this.key, this.iv);
  private readonly out: Writable;
  private tag: Buffer | undefined;
  digest: FileDigest | undefined;

  /**
   * `onError` hears a spool file that cannot be written (a missing or full spool directory):
   * the export fails with that error instead of the process crashing on an unhandled 'error'.
   */
  constructor(path: string, directory: string, onError?: (error: Error) => void) {
    this.file = join(directory, `privacykit-export-${randomUUID()}.spool`);
    this.out = createWriteStream(this.file, { mode: 0o600 });
    this.out.on('error', (error) => {
      onError?.(error);
      // Writers waiting on the cipher wake up ("export stream closed") instead of hanging.
      this.cipher.destroy();
    });
    this.cipher.pipe(this.out);
    this.sink = new TextSink(path, this.cipher);
  }

  async finish(): Promise<FileDigest> {
    this.digest = await this.sink.close();
    await finished(this.out);
    this.tag = this.cipher.getAuthTag();
    return this.digest;
  }

  /** The spooled text, decrypted; the file is removed once read (or on failure). */
  open(): Readable {
    if (!this.tag) throw new Error('spool not finished');
    const decipher = createDecipheriv('aes-256-gcm', this.key, this.iv);
    decipher.setAuthTag(this.tag);
    return pipeline(createReadStream(this.file), decipher, () => this.remove());
  }

  remove(): void {
    rmSync(this.file, { force: true });
    if (!this.out.closed) {
      // Removed while still being written (an aborted export): the file is opened asynchronously,
      // so it may appear after the rm above — stop writing and remove it again once closed.
      this.out.once('close', () => rmSync(this.file, { force: true }));
      this.cipher.destroy();
      this.out.destroy();
    }
  }
}
