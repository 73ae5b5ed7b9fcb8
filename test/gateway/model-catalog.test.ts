/**
 * The gateway's model catalog driven directly, with a manual clock: synchronous answers (a routed request never
 * waits on the network), fail-open while no model is known, background refreshes bounded per interval, and the
 * admission-phase check the gateway registers with the director.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { EppError } from '../../src/framework/errors.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { ModelCatalog } from '../../src/server/gateway/model-catalog.ts';
import { ManualClock } from '../support/doubles.ts';
import { fixedStore } from '../support/epp.ts';
import { chatInput, testDirector } from '../support/runtime.ts';

let server: http.Server;
let port = 0;
let served: string[] = ['m'];
let fetches = 0;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url !== '/v1/models') return void res.writeHead(404).end();
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: served.map((id) => ({ id, object: 'model', owned_by: 'x' })) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

function catalog(clock: ManualClock): { catalog: ModelCatalog; agent: http.Agent } {
  const agent = new http.Agent({ keepAlive: false });
  const store = fixedStore([`127.0.0.1:${port}`]);
  return { agent, catalog: new ModelCatalog({ endpoints: () => store.endpoints(), agent, logger: silentLogger(), now: () => clock.now() }) };
}

test('answers synchronously; fail-open until a list with a model has loaded; a miss refreshes at most once a second', async () => {
  served = ['m'];
  fetches = 0;
  const clock = new ManualClock();
  const { catalog: c, agent } = catalog(clock);
  try {
    assert.equal(c.admits('anything'), true, 'not loaded yet: fail-open (and the first round starts)');
    assert.equal(fetches, 0, 'nothing was awaited: the round is still on its way');
    await c.whenSettled();
    assert.equal(fetches, 1);
    assert.equal(c.admits('m'), true);
    assert.equal(c.admits('unknown-1'), false);
    assert.equal(c.admits('unknown-2'), false);
    await c.whenSettled();
    assert.equal(fetches, 1, 'misses within the interval start no refresh');

    served = ['m', 'new'];
    clock.advance(1000);
    assert.equal(c.admits('new'), false, 'a model just added: this request still gets the 404 ...');
    assert.equal(c.admits('other'), false);
    await c.whenSettled();
    assert.equal(fetches, 2, '... and one round, shared by every miss, finds it');
    assert.equal(c.admits('new'), true);

    clock.advance(5000);
    assert.equal(c.admits('m'), true, 'a stale list still answers at once');
    await c.whenSettled();
    assert.equal(fetches, 3, 'and is refreshed in the background');
  } finally {
    agent.destroy();
  }
});

test('a pool whose servers list no model admits every model (the model server decides)', async () => {
  served = [];
  fetches = 0;
  const clock = new ManualClock();
  const { catalog: c, agent } = catalog(clock);
  try {
    await c.refresh();
    assert.equal(c.admits('whatever'), true);
  } finally {
    agent.destroy();
  }
});

test('the admission-phase check: registered for one data plane, it refuses there with 404 and nowhere else', async () => {
  served = ['m'];
  const clock = new ManualClock();
  const { catalog: c, agent } = catalog(clock);
  try {
    await c.refresh();
    const t = testDirector();
    const off = t.director.registerAdmissionCheck('gateway', c.admissionCheck());
    const input = chatInput();
    const unknown = { ...input, body: new TextEncoder().encode(JSON.stringify({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })) };
    await assert.rejects(t.director.route({ ...unknown, dataPlane: 'gateway' }), (e: unknown) => e instanceof EppError && e.code === 'NotFound' && /`nope` does not exist/.test(e.message));
    assert.equal(t.director.liveResponseStreams, 0, 'refused before scheduling');
    const viaExtProc = await t.director.route({ ...unknown, dataPlane: 'ext_proc' });
    assert.equal(viaExtProc.request.targetModel, 'nope', 'ext_proc requests are not checked');
    await viaExtProc.response.abort('test');
    const known = await t.director.route({ ...input, dataPlane: 'gateway' });
    await known.response.abort('test');
    off();
    const afterOff = await t.director.route({ ...unknown, dataPlane: 'gateway' });
    await afterOff.response.abort('test');
  } finally {
    agent.destroy();
  }
});
