import { afterAll } from 'vitest';
import { stopAllRedis } from '../redis/registry.js';

// Every test file stops the servers it started, also when a test failed or timed out.
afterAll(stopAllRedis);
