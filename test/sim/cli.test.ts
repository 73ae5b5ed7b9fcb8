import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerSimCommand } from '../../src/sim/cli.ts';
import type { Fleet } from '../../src/sim/fleet.ts';

describe('epp sim command', () => {
  it('starts the fleet with the given options and shuts down on SIGTERM', async () => {
    const signals = new EventEmitter();
    const lines: string[] = [];
    let fleet: Fleet | null = null;
    const checks: Promise<void>[] = [];
    const program = new Command('epp').exitOverride();
    registerSimCommand(program, {
      signals,
      log: (l) => lines.push(l),
      onStarted: (f) => {
        fleet = f;
        checks.push((async () => {
          assert.equal(f.servers.length, 2);
          const config = (await (await fetch(`${f.servers[1]?.url}/admin/config`)).json()) as Record<string, unknown>;
          assert.equal(config['max-num-seqs'], 8);
          assert.equal(config['step-overhead'], '2ms');
          assert.equal(config['speed-factor'], 3);
          assert.deepEqual(config['served-model-name'], ['m1', 'm2']);
          assert.deepEqual(config['loras'], { ad: '/x' });
          assert.equal(config['metrics-names'], 'sglang');
          const metrics = await (await fetch(`${f.servers[0]?.url}/metrics`)).text();
          assert.match(metrics, /^sglang:num_queue_reqs\{model_name="m1"\} 0$/m);
        })().finally(() => signals.emit('SIGTERM')));
      },
    });
    await program.parseAsync([
      'sim', '--servers', '2', '--base-port', '0', '--max-num-seqs', '8', '--step-overhead', '2ms', '--model', 'm1', '--model', 'm2',
      '--lora', 'ad=/x', '--metrics-names', 'sglang', '--slow-server', '1=3',
    ], { from: 'user' });
    await Promise.all(checks);
    assert.ok(fleet !== null);
    assert.match(lines.join('\n'), /SIGTERM received, shutting down/);
    const url = (fleet as Fleet).servers[0]?.url as string;
    await assert.rejects(fetch(`${url}/health`), 'servers are closed');
  });

  it('--help lists the documented options', async () => {
    let out = '';
    const program = new Command('epp').exitOverride().configureOutput({ writeOut: (s) => { out += s; } });
    const sim = registerSimCommand(program);
    sim.exitOverride().configureOutput({ writeOut: (s) => { out += s; } });
    await assert.rejects(program.parseAsync(['sim', '--help'], { from: 'user' }), (e: unknown) => e instanceof CommanderError && e.code === 'commander.helpDisplayed');
    for (const flag of ['--servers', '--base-port', '--model', '--latency-model', '--time-scale', '--metrics-names', '--kv-cache-size', '--failure-injection-rate', '--stall-every']) {
      assert.ok(out.includes(flag), flag);
    }
    assert.match(out, /--max-num-seqs <value>\s+running requests per server \(default: 32\)/);
  });

  it('rejects invalid option values', async () => {
    const program = new Command('epp').exitOverride();
    registerSimCommand(program, { signals: new EventEmitter() });
    await assert.rejects(program.parseAsync(['sim', '--base-port', '0', '--latency-model', 'fast'], { from: 'user' }), /latency-model: expected one of step\|llmd/);
  });
});
