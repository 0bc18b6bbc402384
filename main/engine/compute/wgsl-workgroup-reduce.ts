/**
 * WGSL source of a workgroup-wide reduction, for programs that reduce within one workgroup (one
 * workgroup per channel, per query...): `fn <name>(v : f32, t : u32) -> f32` combines every thread's
 * v by `op` (a WGSL expression in a and b) in a fixed tree order and returns the result to every
 * thread (values of `type`, f32 unless named: vec3<f32> sums three at once); t is the thread's local
 * index. All threads of the workgroup must call it (barriers).
 */
export function workgroupReduceWgsl(name: string, threads: number, op: string, type = 'f32'): string {
  if (!Number.isInteger(Math.log2(threads))) throw new RangeError(`workgroup size ${threads} is not a power of two`);
  const buf = `${name}Buf`;
  return `
var<workgroup> ${buf} : array<${type}, ${threads}>;

fn ${name}(v : ${type}, t : u32) -> ${type} {
  ${buf}[t] = v;
  workgroupBarrier();
  for (var s = ${threads / 2}u; s > 0u; s >>= 1u) {
    if (t < s) {
      let a = ${buf}[t];
      let b = ${buf}[t + s];
      ${buf}[t] = ${op};
    }
    workgroupBarrier();
  }
  let r = ${buf}[0];
  workgroupBarrier();
  return r;
}`;
}
