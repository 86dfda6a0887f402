import { civilDateOf } from '@privacykit/retention';
import { describe, expect, it } from 'vitest';
import { instantOf } from './retention.js';

describe('retention dry-run --at', () => {
  it('a civil date is that day in the policy zone, from UTC−12 to UTC+14, DST days included', async () => {
    const zones = [
      'Etc/GMT+12',
      'America/Los_Angeles',
      'UTC',
      'Europe/Paris',
      'Pacific/Auckland',
      'Pacific/Tongatapu',
      'Pacific/Kiritimati',
    ];
    // Noon UTC, as before, is already 2031-01-02 in Auckland (UTC+13 in January).
    for (const zone of zones) {
      for (const day of ['2031-01-01', '2031-03-30', '2031-10-26', '2024-02-29']) {
        expect(civilDateOf(await instantOf(day, zone), zone), `${day} in ${zone}`).toBe(day);
      }
    }
  });

  it('an instant is taken as given', async () => {
    const at = new Date('2031-01-01T23:30:00Z');
    expect(await instantOf(at, 'Pacific/Auckland')).toBe(at);
  });
});
