/**
 * The page's register request as the server and the Electron IPC check it (main/server/rpc.ts): every
 * setting the panel sends reaches the engine (the SAM matcher's refinement once did not: the box
 * did nothing), unknown values are refused with the field's name, unknown fields do not pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerRequest } from '../../main/server/rpc.ts';

const base = { fixedId: 'v1', movingId: 'v2', matcher: 'sam', stages: ['affine', 'coarse'], gridMm: 24 };

test('register request: refine passes through, absent stays absent, bad values are named', () => {
  assert.deepEqual(registerRequest({ ...base, refine: 'none' }), { ...base, refine: 'none' });
  assert.deepEqual(registerRequest({ ...base, refine: 'ncc' }), { ...base, refine: 'ncc' });
  assert.deepEqual(registerRequest(base), base);
  assert.equal('refine' in registerRequest(base), false);
  assert.throws(() => registerRequest({ ...base, refine: 'icp' }), /refine: use ncc or none/);
  assert.throws(() => registerRequest({ ...base, matcher: 'mi' }), /matcher: use sam or ncc/);
  assert.throws(() => registerRequest({ ...base, gridMm: 2 }), /gridMm/);
  assert.equal('extra' in registerRequest({ ...base, extra: 1 }), false);
});
