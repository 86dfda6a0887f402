/** One message to send. `to` is always a verified or registered channel, never an address the requester typed. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

/**
 * How the library sends mail: a one-method interface the host implements with its transport.
 * With nodemailer: `{ send: (message) => transporter.sendMail({ from, ...message }) }`, or
 * {@link nodemailerMailer}.
 */
export interface Mailer {
  send(message: MailMessage): Promise<unknown>;
}

/** The part of a nodemailer transporter this library uses (no import of nodemailer needed). */
export interface SendMailTransport {
  sendMail(message: MailMessage & { from: string }): Promise<unknown>;
}

/** Adapts a nodemailer transporter (or anything with `sendMail`) to {@link Mailer}. */
export function nodemailerMailer(transport: SendMailTransport, options: { from: string }): Mailer {
  return { send: (message) => transport.sendMail({ from: options.from, ...message }) };
}
