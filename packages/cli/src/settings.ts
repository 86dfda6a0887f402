import type { LoadedConfig } from './config.js';

/** A package's section of the config (`export const consent = {...}`), or `{}`. */
export function settingsOf(config: LoadedConfig, name: string): Readonly<Record<string, unknown>> {
  const value = config.values[name];
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}
