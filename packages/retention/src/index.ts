// @privacykit/retention — under construction; see README.md for what it will do.
export const packageName = '@privacykit/retention';
