#!/usr/bin/env node
// The `epp` executable. The sources are TypeScript; tsx compiles them on load, so a fresh clone
// needs nothing but `npm install` (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
