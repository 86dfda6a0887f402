import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TextSink } from './text-sink.js';

async function through(pieces: readonly string[], highWaterMark: number) {
  const target = new PassThrough({ highWaterMark });
  const chunks: Buffer[] = [];
  target.on('data', (chunk: Buffer) => chunks.push(chunk));
  const sink = new TextSink('file.txt', target);
  for (const piece of pieces) {
    const waiting = sink.write(piece);
    if (waiting) await waiting;
  }
  const digest = await sink.close();
  await new Promise((resolve) => target.on('end', resolve));
  return { digest, bytes: Buffer.concat(chunks) };
}

describe('TextSink', () => {
  it('ships exactly the UTF-8 of what was written, and digests those bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.string({ unit: 'binary', maxLength: 50 }),
            // Pieces around and beyond the chunk size, multi-byte and astral characters included.
            fc
              .tuple(fc.constantFrom('a', 'é', '—', '😀'), fc.integer({ min: 10_000, max: 200_000 }))
              .map(([character, count]) => character.repeat(Math.ceil(count / character.length))),
          ),
          { maxLength: 12 },
        ),
        fc.constantFrom(1, 16 * 1024),
        async (pieces, highWaterMark) => {
          const expected = Buffer.from(pieces.join(''), 'utf8');
          const { digest, bytes } = await through(pieces, highWaterMark);
          expect(bytes.equals(expected)).toBe(true);
          expect(digest).toEqual({
            path: 'file.txt',
            bytes: expected.length,
            sha256: createHash('sha256').update(expected).digest('hex'),
          });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('fails the writer when the target closes while it waits', async () => {
    const target = new PassThrough({ highWaterMark: 1 });
    const sink = new TextSink('file.txt', target);
    const waiting = sink.write('x'.repeat(300_000));
    expect(waiting).toBeInstanceOf(Promise);
    target.destroy();
    await expect(waiting).rejects.toThrow(/closed/);
    expect(() => sink.write('y'.repeat(300_000))).toThrow(/closed/);
  });
});
