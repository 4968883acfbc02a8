import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join as joinPath } from 'node:path';
import { forgetGroup, type GroupSnapshot, joinGroup, type Member, monitorGroup } from '@understudy/core';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDashboard, startDashboard } from './dashboard-helpers.js';
import { Cli, killLeftoverClis, STARTUP_MS } from './helpers.js';

/** Debian's Chromium, which scripts/setup installs (never a browser build of Playwright's own). */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const missing = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is missing; scripts/setup installs it with apt-get when run as root`;
if (missing) console.warn(`SKIPPED: the dashboard browser test: ${missing}`);

/** Where to write the README's screenshot of a failover (docs/images/dashboard-failover.png). */
const SCREENSHOT = process.env.UNDERSTUDY_SCREENSHOT;

/** host-b first and active in `orders`: the failover as the page shows it. */
const NEW_ACTIVE = 'article[data-group="orders"] tbody tr:first-child[data-member="host-b"][data-state="active"]';

const H = 100;
const A = 1000;

let server: RedisServer;
let profile: string;
let browser: BrowserContext;
let page: Page;
let dashboard: RunningDashboard;
let wrapper: Cli;
const members: Member[] = [];

async function join(group: string, memberId: string, weight: number, activeGoal = 1): Promise<Member> {
  const member = await joinGroup({
    redis: server.url,
    group,
    memberId,
    weight,
    activeGoal,
    heartbeatInterval: H,
    activationInterval: A,
  });
  members.push(member);
  return member;
}

/** The row of a member on the page, by its id (the page keeps ids in data attributes). */
function row(group: string, member: string) {
  return page.locator(`article[data-group="${group}"] tr[data-member="${member}"]`);
}

describe.skipIf(missing !== undefined)('the dashboard in a real browser', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    profile = mkdtempSync(joinPath(tmpdir(), 'understudy-chromium-'));
    [server, browser] = await Promise.all([
      startRedis(),
      chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_FLAGS,
        viewport: { width: 1280, height: 800 },
      }),
    ]);
    page = browser.pages()[0] ?? (await browser.newPage());
    // `orders` fails over when host-a's process is killed: it runs in a process of its own.
    wrapper = new Cli([
      'run',
      '--redis',
      server.url,
      '--group',
      'orders',
      '--member-id',
      'host-a',
      '--weight',
      '30',
      '--heartbeat',
      String(H),
      '--activation',
      String(A),
      '--',
      process.execPath,
      '-e',
      'setInterval(() => {}, 1 << 30)',
    ]);
    [dashboard] = await Promise.all([
      startDashboard(['--redis', server.url, '--scan-interval', '250']),
      join('orders', 'host-b', 20),
      join('orders', 'host-c', 10),
      join('billing', 'billing-1', 10, 2),
      join('billing', 'billing-2', 10, 2),
      join('billing', 'billing-3', 5, 2),
    ]);
    await page.goto(dashboard.url);
  }, STARTUP_MS * 2);

  afterAll(async () => {
    await browser?.close();
    await Promise.allSettled(members.splice(0).map((m) => m.leave()));
    await killLeftoverClis();
    await server?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows a failover within a second of the monitor seeing it', async () => {
    await row('orders', 'host-a').and(page.locator('[data-state="active"]')).waitFor({ timeout: STARTUP_MS });
    const monitor = await monitorGroup({ redis: server.url, group: 'orders' });
    try {
      const bActive = (s: GroupSnapshot) => s.members[0]?.id === 'host-b' && s.members[0].state === 'active';
      // Wall-clock times on both sides (one machine, one clock): the page stamps the moment its
      // DOM shows the new active, so Playwright's own polling does not count.
      const monitorSaw = new Promise<number>((resolve) => {
        monitor.on('change', (s) => {
          if (bActive(s)) resolve(Date.now());
        });
      });
      await page.evaluate(`new MutationObserver((_, observer) => {
        if (document.querySelector(${JSON.stringify(NEW_ACTIVE)})) {
          window.shownAt = Date.now();
          observer.disconnect();
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true })`);

      const killedAt = Date.now();
      wrapper.signal('SIGKILL');
      const sawAt = await monitorSaw;
      // A function, not an expression: Playwright polls an expression with eval in the page,
      // which the dashboard's CSP (script-src 'self') refuses once the first check finds it false.
      await page.waitForFunction(() => (globalThis as { shownAt?: number }).shownAt !== undefined, undefined, {
        timeout: 5000,
      });
      const shownAt = Number(await page.evaluate('window.shownAt'));
      console.info(
        `dashboard: failover seen by a monitor ${sawAt - killedAt} ms after the kill, ` +
          `on the page ${shownAt - sawAt} ms after the monitor (A = ${A} ms)`,
      );
      expect(shownAt - sawAt).toBeLessThan(1000);

      // Once shown, the card settles at 1/1 with host-b active, host-a gone and the failover
      // logged (the transition arrives right after the snapshot); a failure says what it shows.
      const orders = page.locator('article[data-group="orders"]');
      const summary = async () => ({
        count: (await orders.locator('.count').textContent())?.replace(/\s+/g, ''),
        members: await orders
          .locator('tbody tr')
          .evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-member')}=${r.getAttribute('data-state')}`)),
        lastActivation: await orders.locator('.transitions li[data-type="activate"]').first().textContent(),
      });
      await expect.poll(summary, { timeout: 5000 }).toEqual({
        count: '1/1active',
        members: ['host-b=active', 'host-c=standby'],
        lastActivation: expect.stringMatching(/activatehost-bepoch \d+ failover$/),
      });
      if (SCREENSHOT) {
        mkdirSync(dirname(SCREENSHOT), { recursive: true });
        await page.screenshot({ path: SCREENSHOT });
        console.info(`dashboard: screenshot of the failover written to ${SCREENSHOT}`);
      }
    } finally {
      await monitor.close();
    }
  });

  it('shows a group that appears, and drops it when it is forgotten', async () => {
    const card = page.locator('article[data-group="reports"]');
    const member = await join('reports', 'reporter', 1);
    await card.waitFor({ state: 'visible', timeout: 5000 });
    await row('reports', 'reporter').waitFor({ timeout: 5000 });
    await member.leave();
    await forgetGroup({ redis: server.url, group: 'reports' });
    await card.waitFor({ state: 'detached', timeout: 5000 });
  });

  it('shows ids and hosts planted in Redis as text, never as markup', async () => {
    const planted = '<img src=x onerror="document.title=1">';
    const redis = new Redis(server.url);
    try {
      // A group written by someone other than understudy: a config, and a member with a future lease.
      const prefix = 'understudy:{planted}:';
      const now = Number((await redis.time())[0]) * 1000;
      await redis.hset(`${prefix}config`, { activeGoal: 1, activationInterval: A, heartbeatInterval: H, version: 1 });
      await redis.zadd(`${prefix}rank`, 1, planted);
      await redis.zadd(`${prefix}leases`, now + 60_000, planted);
      await redis.hset(`${prefix}members`, planted, JSON.stringify({ w: 1, h: '<b>bold</b>', p: 1 }));
      await redis.xadd(`${prefix}log`, '*', 'type', 'join', 'member', planted, 'reason', '<i>why</i>', 'weight', '1');

      const card = page.locator('article[data-group="planted"]');
      await card.waitFor({ timeout: 5000 });
      await expect.poll(() => card.locator('tbody .id').textContent(), { timeout: 5000 }).toBe(planted);
      expect(await card.locator('.where').textContent()).toBe('<b>bold</b> · pid 1');
      expect(await card.locator('.transitions .who').first().textContent()).toBe(planted);
      expect(await card.locator('img, b, i').count()).toBe(0);
      expect(await page.title()).toBe('understudy dashboard');
    } finally {
      await redis.del(...['config', 'rank', 'leases', 'members', 'log'].map((k) => `understudy:{planted}:${k}`));
      redis.disconnect();
    }
    await page.locator('article[data-group="planted"]').waitFor({ state: 'detached', timeout: 5000 });
  });

  for (const viewport of [
    { width: 1280, height: 800 },
    { width: 390, height: 844 },
  ]) {
    it(`is usable at ${viewport.width}×${viewport.height}: no sideways scrolling, the counts in view`, async () => {
      await page.setViewportSize(viewport);
      // One look at the laid-out page (the rows are redrawn twice a second as leases renew).
      const layout = (await page.evaluate(`(() => {
        const shown = (e) => getComputedStyle(e).display !== 'none';
        const cells = [...document.querySelectorAll('article.group td, article.group .count')].filter(shown);
        const count = document.querySelector('article.group .count').getBoundingClientRect();
        return {
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          cutOff: cells.filter((e) => e.getBoundingClientRect().right > window.innerWidth).length,
          countInView: count.left >= 0 && count.right <= window.innerWidth && count.bottom <= window.innerHeight,
        };
      })()`)) as { overflow: number; cutOff: number; countInView: boolean };
      expect(layout).toEqual({ overflow: 0, cutOff: 0, countInView: true });
      const first = page.locator('article.group').first();
      expect(await first.getAttribute('data-group')).toBe('billing');
      expect((await first.locator('.count').textContent())?.replace(/\s+/g, '')).toBe('2/2active');
      expect(await first.locator('tr[data-state="active"] .lease .fill').count()).toBe(2);
    });
  }
});
