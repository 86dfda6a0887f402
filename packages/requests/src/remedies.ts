import type { AddressedParty, Policy } from '@privacykit/core';

/** A remedy the subject has against a refusal (Art 12(4), 77, 79). */
export type Remedy =
  | { kind: 'complaint'; article: 'Art. 77'; authority: AddressedParty; description: string }
  | { kind: 'judicial'; article: 'Art. 79'; description: string };

/**
 * The remedies a refusal must name (Art 12(4)): a complaint to the controller's supervisory
 * authority, taken from the policy, and an effective judicial remedy.
 */
export function remediesFor(policy: Policy): Remedy[] {
  return [
    {
      kind: 'complaint',
      article: 'Art. 77',
      authority: policy.supervisoryAuthority,
      description: `You may lodge a complaint with ${policy.supervisoryAuthority.name}.`,
    },
    {
      kind: 'judicial',
      article: 'Art. 79',
      description:
        'You may seek a judicial remedy before the courts of the Member State where the controller is established or where you habitually reside.',
    },
  ];
}

/** The remedies as plain text for a notice. */
export function describeRemedies(remedies: readonly Remedy[]): string {
  return remedies
    .map((remedy) => {
      switch (remedy.kind) {
        case 'complaint': {
          const contact = [remedy.authority.address, remedy.authority.website, remedy.authority.email]
            .filter(Boolean)
            .join(', ');
          return `- ${remedy.description}${contact ? ` (${contact})` : ''} [${remedy.article}]`;
        }
        case 'judicial':
          return `- ${remedy.description} [${remedy.article}]`;
      }
    })
    .join('\n');
}
