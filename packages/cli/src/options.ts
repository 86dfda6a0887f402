import { InvalidArgumentError } from 'commander';
import { isPrivacyKitError } from '@privacykit/core/errors';
import { parseDuration, parsePositiveInteger } from './duration.js';

/** Turns a parse function into a commander option parser that reports a usage error. */
export function optionParser<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      throw new InvalidArgumentError(isPrivacyKitError(error) ? error.message : String(error));
    }
  };
}

export const durationOption = optionParser(parseDuration);
export const positiveIntegerOption = optionParser((text) => parsePositiveInteger(text, 'this option'));

/** A positive whole number option of at most `max` (a batch size the library caps). */
export function boundedIntegerOption(max: number): (text: string) => number {
  return optionParser((text) => parsePositiveInteger(text, 'this option', max));
}
