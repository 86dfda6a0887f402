import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  raw: string;
}

/** A real SMTP server on 127.0.0.1:0 that keeps every message it receives. */
export async function startSmtp(): Promise<{
  url: string;
  messages: ReceivedMail[];
  close(): Promise<void>;
}> {
  const messages: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        messages.push({
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The one-time code of the latest message to `to`, waiting for it to arrive. */
export async function waitForCode(
  messages: ReceivedMail[],
  to: string,
  after: number,
  ms = 10_000,
): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const message = messages.slice(after).find((m) => m.to.includes(to));
    const match = message && /code: (\d{6,8})/.exec(message.raw.replace(/=\r?\n/g, ''));
    if (match) return match[1]!;
    if (Date.now() > until) throw new Error(`no code mailed to ${to}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
