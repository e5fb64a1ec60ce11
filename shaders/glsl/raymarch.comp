#version 450
// Ray-marches a CT volume with its label mask, one invocation per pixel.
//
// Frames: `world` is patient LPS millimetres; `view` is the camera's frame as OpenXR gives it
// (+x right, +y up, looking down -z); `tex` is the volume's texture space, [0,1]^3 over the
// voxel cells (voxel centres at (i + 0.5) / n). The ray parameter `t` is in world millimetres,
// so the step and the opacity correction are physical whatever the voxel spacing.
//
// Overlays (pen strokes, the avatar) are capsules composited by depth in the same pass: each
// pixel finds the nearest capsule its ray enters, marches the volume up to it, blends the shaded
// capsule under what accumulated in front, then goes on to the next capsule and the volume
// behind it. So semi-transparent tissue in front tints a capsule and opaque bone hides it.
// Textured quads (X-ray boards, text labels) are overlays too, binned with the capsules and
// blended in the same depth order.

layout(local_size_x = 8, local_size_y = 8, local_size_z = 1) in;

// The frame's mode, fixed when the pipeline is created (one pipeline per combination). On a CPU
// device (lavapipe) every branch runs under a lane mask whatever the condition, so a mode chosen
// by a uniform would pay for the other modes' texture fetches on every step; as specialisation
// constants the unused code is compiled away.
// Maximum-intensity projection instead of compositing.
layout(constant_id = 0) const bool MIP = false;
// The volume has a label map (else label 0 everywhere, and the label texture is never read).
layout(constant_id = 1) const bool LABELS = false;
// Phong shading from the gradient volume (compositing only).
layout(constant_id = 2) const bool SHADING = false;
// The frame has overlays (capsules or quads that can touch it). Without them the overlay code
// is compiled away: on lavapipe it cost a plain 512² bone frame 10-15 % of its CPU time even
// when no pixel had an overlay to test (its setup runs under a lane mask, and the state it
// keeps live across the march loop crowds the per-sample loop's registers).
layout(constant_id = 3) const bool OVERLAYS = false;
// Which kinds of overlay the frame has (with OVERLAYS): the test of a kind the frame lacks is
// compiled out of the search loop, whose body lavapipe runs in full (both kinds' tests, the
// quad's texture fetch included) for every entry of a list under a lane mask.
layout(constant_id = 4) const bool CAPSULES = false;
layout(constant_id = 5) const bool QUADS = false;

// Density normalised to [0,1] over the renderer's HU range; trilinear.
layout(set = 0, binding = 0) uniform sampler3D density;
// Label id per voxel; read with texelFetch (nearest, never blended).
layout(set = 0, binding = 1) uniform usampler3D labels;
// Per (density bin, label row): RGB, and log2(1 - opacity per unit distance) in A, so that the
// step correction is one exp2 and interpolating between bins interpolates optical depth.
layout(set = 0, binding = 2) uniform sampler2D lut;
// Per brick, r: 0 when nothing in it can be visible under the current transfer function, else
// its highest normalised density (u16, at least 1), an upper bound of every sample in it; g: 0
// when it may show something, else the chessboard distance in bricks to the nearest brick that
// may (every brick nearer is empty too, so a ray may leap the whole cube of them).
layout(set = 0, binding = 3) uniform usampler3D occupancy;
// Premultiplied RGBA (colour over black) and accumulated opacity.
layout(set = 0, binding = 4, rgba8) uniform writeonly image2D target;

layout(set = 0, binding = 5) uniform Params {
    mat4 tex_from_world;
    mat4 world_from_view;
    // Columns hold A^T for A = voxel_from_world's linear part: turns an index-space gradient
    // into a world-space one.
    mat4 world_grad_from_index_grad;
    // tan of the frustum half-angles: left (negative), right, up, down (negative).
    vec4 tangents;
    // World plane (n, d): keeps points with dot(n, p) + d >= 0; n = 0 disables it.
    vec4 clip_plane;
    // Crop box in tex space.
    vec4 crop_min;
    vec4 crop_max;
    // x: step in mm, y: opacity unit distance in mm, z: early-termination opacity, w: the
    // density at or below which every visible label row of the LUT is exactly transparent
    // (filtering between bins included), -1 when none is.
    vec4 march;
    // ambient, diffuse, specular, specular power.
    vec4 shading;
    // x, y, z: voxel dims; w: unused.
    uvec4 dims;
    // x, y, z: brick grid dims; w: brick edge in voxels.
    uvec4 bricks;
    // x, y: image size; z: jitter seed; w: flags (bit 1 jitter, bit 3 pick: pixel (0, 0) writes
    // the depth where opacity reached march.z).
    uvec4 image;
    // x, y: overlay tiles along x and y (0 when there are no overlays); z: tile edge in pixels;
    // w: capsules in the bins' index space (indices from w on are quads, index - w).
    uvec4 overlay;
    // xyz: multiplies a density texture coordinate into the gradient texture's (1 at full
    // resolution; the gradient texture may cover 2×2×2 voxels per texel).
    vec4 normal_scale;
} p;

// Density samples taken this frame (for benchmarks: samples per second across machines), and
// for a pick, the ray distance in mm at which the opacity first reached march.z (-1: never).
layout(set = 0, binding = 6) buffer Counters {
    uint samples_taken;
    float pick_depth_mm;
} counters;

// Overlay capsules in world mm: (a, radius), (b, unused), straight-alpha RGBA.
// Index-space central difference of the density per voxel (times 65535), precomputed on upload;
// RGBA16F, trilinear.
layout(set = 0, binding = 9) uniform sampler3D normals;

struct Capsule {
    vec4 a_radius;
    vec4 b;
    vec4 rgba;
};
layout(set = 0, binding = 7, std430) readonly buffer Capsules {
    Capsule capsules[];
};
// Screen-space bins of the capsules and quads for this frame: an (offset, count) pair per tile,
// row by row, then one pair for the global list every pixel tests; offsets index this same
// array, whose tail holds overlay indices (capsules, then quads from p.overlay.w on).
layout(set = 0, binding = 8, std430) readonly buffer Bins {
    uint bins[];
};

// Textured rectangles in world mm: the points centre + a·u + b·v for a, b in [-1, 1]; the
// image's column grows with a, its row with -b.
struct Quad {
    // xyz: centre; w: atlas layer.
    vec4 centre_layer;
    // xyz: u × v, the front normal (not unit length); w: 1 when seen from behind too.
    vec4 normal_sides;
    // xyz: dot(p - centre, u_dual) is a (the dual basis of u, v in their plane).
    vec4 u_dual;
    // xyz: dot(p - centre, v_dual) is b.
    vec4 v_dual;
    // Straight-alpha RGBA multiplying the texels.
    vec4 tint;
    // The image's rectangle in the atlas layer, normalised: x, y of its top-left, width, height.
    vec4 rect;
};
layout(set = 0, binding = 10, std430) readonly buffer Quads {
    Quad quads[];
};
// The quads' images, premultiplied RGBA8 (bytes as given, no sRGB decoding), one image per
// rectangle of a layer with a transparent texel between neighbours; bilinear, clamp to edge.
layout(set = 0, binding = 11) uniform sampler2DArray quad_atlas;

const float LUT_BINS = 1024.0;
const float LUT_ROWS = 256.0;
// Samples per batch of the marching loop. Compositing takes one: transparent samples are
// stepped over before a batch starts, so a batch mostly lands on a surface that ends the ray,
// and a smaller loop body is cheaper on a CPU device (demo CT bone frame on lavapipe, A/B in
// one process: 2 -> 1 cut 250 -> 235 ms CPU per frame; 4 cost 20 % more). MIP, which has no
// such scan, keeps 2 (5 % faster than 1).
const int BATCH = MIP ? 2 : 1;

// Integer hash (lowbias32); deterministic per pixel and seed.
float hash01(uvec2 pixel, uint seed) {
    uint x = pixel.x * 0x9E3779B1u ^ (pixel.y + 0x7F4A7C15u) * 0x85EBCA77u ^ seed * 0xC2B2AE3Du;
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return float(x >> 8) * (1.0 / 16777216.0);
}

vec4 lut_at(float v, uint label) {
    vec2 uv = vec2(v * ((LUT_BINS - 1.0) / LUT_BINS) + 0.5 / LUT_BINS,
                   (float(label) + 0.5) / LUT_ROWS);
    return textureLod(lut, uv, 0.0);
}

uint label_at(vec3 tex) {
    ivec3 n = ivec3(p.dims.xyz);
    ivec3 ijk = clamp(ivec3(floor(tex * vec3(n))), ivec3(0), n - 1);
    return texelFetch(labels, ijk, 0).r;
}

// Intersects a ray with an axis-aligned box; returns (t_near, t_far), empty when near > far.
vec2 slab(vec3 o, vec3 inv_d, vec3 lo, vec3 hi) {
    vec3 a = (lo - o) * inv_d;
    vec3 b = (hi - o) * inv_d;
    vec3 t0 = min(a, b);
    vec3 t1 = max(a, b);
    return vec2(max(max(t0.x, t0.y), t0.z), min(min(t1.x, t1.y), t1.z));
}

vec3 shade(vec3 rgb, vec3 tex, vec3 ray_world) {
    // One trilinear fetch of the precomputed gradient (it interpolates the voxels' central
    // differences, which is what a central difference of the trilinear field is).
    vec3 g_index = textureLod(normals, tex * p.normal_scale.xyz, 0.0).xyz * (1.0 / 65535.0);
    vec3 g = mat3(p.world_grad_from_index_grad) * g_index;
    float len = length(g);
    if (len < 1e-6) {
        // Flat region: no defined surface, light it as if facing the viewer.
        return rgb * (p.shading.x + p.shading.y) + vec3(p.shading.z);
    }
    vec3 n = g / len;
    // Headlight: light and eye both along the ray, two-sided as in VTK.
    float ndl = abs(dot(n, ray_world));
    float spec = pow(ndl, p.shading.w);
    return rgb * (p.shading.x + p.shading.y * ndl) + vec3(p.shading.z * spec);
}

const float NO_HIT = 3.0e38;
// Most capsules one pixel blends (nested translucent strokes); bounds the per-pixel work.
const int MAX_OVERLAY_LAYERS = 8;

// Distance along the unit ray (ro, rd) at which it enters capsule i, or NO_HIT. A ray that
// starts inside a capsule never enters it (an eye inside the avatar's glasses sees through).
float capsule_entry(uint i, vec3 ro, vec3 rd) {
    vec3 a = capsules[i].a_radius.xyz;
    vec3 b = capsules[i].b.xyz;
    float r = capsules[i].a_radius.w;
    vec3 centre = 0.5 * (a + b);
    float bound = 0.5 * length(b - a) + r;
    // Bounding sphere first; then solve near its closest approach, where every quantity is of
    // the capsule's size and single precision holds whatever the eye's distance.
    float tc = dot(centre - ro, rd);
    vec3 q = ro + tc * rd;
    vec3 qc = q - centre;
    if (dot(qc, qc) > bound * bound) return NO_HIT;
    float best = NO_HIT;
    // The cylinder's side between the end discs.
    vec3 ab = b - a;
    float len = length(ab);
    if (len > 1e-6) {
        vec3 u = ab / len;
        vec3 o = q - a;
        vec3 o_perp = o - u * dot(o, u);
        vec3 d_perp = rd - u * dot(rd, u);
        float qa = dot(d_perp, d_perp);
        float qb = dot(o_perp, d_perp);
        float qcc = dot(o_perp, o_perp) - r * r;
        float h = qb * qb - qa * qcc;
        if (qa > 1e-12 && h >= 0.0) {
            float s = (-qb - sqrt(h)) / qa;
            float along = dot(o, u) + s * dot(rd, u);
            if (along >= 0.0 && along <= len) best = s;
        }
    }
    // The two end spheres (entering through an end disc means entering its sphere first).
    for (int e = 0; e < 2; e++) {
        vec3 oc = q - (e == 0 ? a : b);
        float hb = dot(oc, rd);
        float h = hb * hb - (dot(oc, oc) - r * r);
        if (h >= 0.0) best = min(best, -hb - sqrt(h));
    }
    if (best == NO_HIT) return NO_HIT;
    float t = tc + best;
    return t > 0.0 ? t : NO_HIT;
}

// Premultiplied colour of quad i where the ray meets it, at local coordinates (a, b).
vec4 quad_texel(uint i, vec2 ab) {
    vec4 r = quads[i].rect;
    // Texel centres of the image's own rectangle only: its neighbours never bleed in.
    vec2 half_texel = 0.5 / vec2(textureSize(quad_atlas, 0).xy);
    vec2 uv = r.xy + vec2(ab.x + 1.0, 1.0 - ab.y) * 0.5 * r.zw;
    uv = clamp(uv, r.xy + half_texel, max(r.xy + r.zw - half_texel, r.xy + half_texel));
    vec4 texel = textureLod(quad_atlas, vec3(uv, quads[i].centre_layer.w), 0.0);
    vec4 tint = quads[i].tint;
    return texel * vec4(tint.rgb * tint.a, tint.a);
}

// Distance along the unit ray (ro, rd) at which it meets quad i where its image is not fully
// transparent, or NO_HIT; `ab` receives the local coordinates of the hit.
float quad_entry(uint i, vec3 ro, vec3 rd, out vec2 ab) {
    ab = vec2(0.0);
    vec3 c = quads[i].centre_layer.xyz;
    vec3 n = quads[i].normal_sides.xyz;
    float rate = dot(rd, n);
    if (rate == 0.0 || (rate > 0.0 && quads[i].normal_sides.w == 0.0)) return NO_HIT;
    float t = dot(c - ro, n) / rate;
    if (!(t > 0.0)) return NO_HIT;
    vec3 q = (ro - c) + t * rd;
    ab = vec2(dot(q, quads[i].u_dual.xyz), dot(q, quads[i].v_dual.xyz));
    if (abs(ab.x) > 1.0 || abs(ab.y) > 1.0) return NO_HIT;
    return quad_texel(i, ab).a > 0.0 ? t : NO_HIT;
}

// The nearest overlay (capsule entry, or quad hit where its image shows) beyond the last one
// blended, among those binned for this pixel's tile and the global list; NO_HIT when none.
// Known cost (issue 16): on lavapipe each list entry costs about as much here as in a pass of
// its own (a pre-pass writing each pixel's first 8 overlays, read by the march, saved the march
// 40-50 ms CPU on 10 boards + 50 labels at 512² and spent as much), and fetching a quad's texel
// only for the nearest rectangle, not per entry, gained 1-3 %. What would cut it: fewer entries
// per tile (smaller tiles where quads crowd) or tests on uniform data (lavapipe gathers every
// quad's vec4s per lane although a workgroup shares one tile; subgroupBroadcastFirst of the
// index did not help on Mesa 22.3).
// `which` receives its bin index (quads from p.overlay.w on) and `ab` a quad's local hit.
// Capsules count from beyond t_after only (two stroke segments entered through their shared
// end sphere at the same t blend once); quads are ordered by (t, index), so a quad at the very
// depth of the last overlay (a label lying on a board) still draws.
float next_overlay(uvec2 pixel, vec3 ro, vec3 rd, float t_after, uint after, out uint which,
                   out vec2 ab) {
    float best = NO_HIT;
    which = 0u;
    ab = vec2(0.0);
    if (!OVERLAYS || p.overlay.x == 0u) return NO_HIT;
    uvec2 tile = pixel / p.overlay.z;
    uint tile_pair = 2u * (tile.y * p.overlay.x + tile.x);
    uint global_pair = 2u * p.overlay.x * p.overlay.y;
    uint tile_first = bins[tile_pair];
    uint tile_count = bins[tile_pair + 1u];
    uint global_first = bins[global_pair];
    uint count = tile_count + bins[global_pair + 1u];
    // The tile's list, then the global one, in one loop: on lavapipe a loop's body runs at least
    // once under a lane mask even when no lane enters it, so two loops cost two masked tests per
    // call where the lists are empty (10 boards and 50 labels on a 512² frame: 290 -> 270 ms CPU).
    for (uint j = 0u; j < count; j++) {
        uint i = bins[j < tile_count ? tile_first + j : global_first + (j - tile_count)];
        if (i < p.overlay.w) {
            if (!CAPSULES) continue;
            float t = capsule_entry(i, ro, rd);
            if (t > t_after && t < best) { best = t; which = i; }
        } else if (QUADS) {
            vec2 hit_ab;
            float t = quad_entry(i - p.overlay.w, ro, rd, hit_ab);
            bool beyond = t > t_after || (t == t_after && i > after);
            bool nearer = t < best || (t == best && i < which);
            if (t < NO_HIT && beyond && nearer) { best = t; which = i; ab = hit_ab; }
        }
    }
    return best;
}

// Premultiplied colour of capsule i where the ray enters it at t: headlight Lambert, and a
// darker rim towards the outline so that a stroke reads as a tube.
vec4 capsule_colour(uint i, vec3 ro, vec3 rd, float t) {
    vec3 a = capsules[i].a_radius.xyz;
    vec3 b = capsules[i].b.xyz;
    vec3 hit = ro + t * rd;
    vec3 ab = b - a;
    float l2 = dot(ab, ab);
    float s = l2 > 0.0 ? clamp(dot(hit - a, ab) / l2, 0.0, 1.0) : 0.0;
    vec3 n = hit - (a + s * ab);
    float nl = length(n);
    float facing = nl > 0.0 ? clamp(-dot(n / nl, rd), 0.0, 1.0) : 1.0;
    vec4 c = capsules[i].rgba;
    vec3 rgb = c.rgb * (0.35 + 0.65 * facing) * (0.55 + 0.45 * smoothstep(0.0, 0.45, facing));
    return vec4(rgb * c.a, c.a);
}

// Blends a premultiplied colour under the accumulated one (front to back).
void blend_under(inout vec4 acc, vec4 c) {
    acc.rgb += (1.0 - acc.a) * c.rgb;
    acc.a += (1.0 - acc.a) * c.a;
}

// Premultiplied colour of overlay `which` (a bin index) where the ray meets it at t (a quad at
// local coordinates ab): quads are unlit, their images shown as they are.
vec4 overlay_colour(uint which, vec3 ro, vec3 rd, float t, vec2 ab) {
    if (!QUADS || (CAPSULES && which < p.overlay.w)) return capsule_colour(which, ro, rd, t);
    return quad_texel(which - p.overlay.w, ab);
}

void main() {
    uvec2 pixel = gl_GlobalInvocationID.xy;
    if (pixel.x >= p.image.x || pixel.y >= p.image.y) {
        return;
    }
    vec2 f = (vec2(pixel) + 0.5) / vec2(p.image.xy);
    vec3 dir_view = vec3(mix(p.tangents.x, p.tangents.y, f.x), mix(p.tangents.z, p.tangents.w, f.y), -1.0);
    vec3 ray_world = normalize(mat3(p.world_from_view) * dir_view);
    vec3 eye_world = p.world_from_view[3].xyz;

    vec3 o = (p.tex_from_world * vec4(eye_world, 1.0)).xyz;
    vec3 d = mat3(p.tex_from_world) * ray_world;
    // Avoid infinities in the slab test for axis-parallel rays.
    vec3 safe_d = mix(d, vec3(1e-12), lessThan(abs(d), vec3(1e-12)));
    vec3 inv_d = 1.0 / safe_d;
    vec2 span = slab(o, inv_d, p.crop_min.xyz, p.crop_max.xyz);
    span.x = max(span.x, 0.0);

    vec3 n = p.clip_plane.xyz;
    if (dot(n, n) > 0.0) {
        float side = dot(n, eye_world) + p.clip_plane.w;
        float rate = dot(n, ray_world);
        if (abs(rate) < 1e-9) {
            if (side < 0.0) span = vec2(1.0, 0.0);
        } else {
            float t_cross = -side / rate;
            if (rate > 0.0) span.x = max(span.x, t_cross); else span.y = min(span.y, t_cross);
        }
    }

    vec4 acc = vec4(0.0);
    // Overlays in front of a maximum-intensity projection (which has no depth).
    vec4 overlay = vec4(0.0);
    // The next overlay along the ray (capsule or quad), the depth and bin index of the last one
    // blended, and how many have been.
    uint cap = 0u;
    vec2 cap_ab;
    float t_cap = NO_HIT;
    float t_after = 0.0;
    int layers = 0;
    float t_reached = -1.0;
    bool mip = MIP;
    bool has_span = span.x < span.y;
    // The march ends here (before its start when the ray misses the volume).
    float span_end = has_span ? span.y : -1.0;
    float step_mm = p.march.x;
    float jitter = (p.image.w & 2u) != 0u ? hash01(pixel, p.image.z) : 0.0;
    float t = span.x + step_mm * jitter;
    float exponent = step_mm / p.march.y;
    bool shading = SHADING;
    bool has_labels = LABELS;
    vec3 brick_scale = vec3(p.dims.xyz) / float(p.bricks.w);
    ivec3 brick_max = ivec3(p.bricks.xyz) - 1;
    float best_v = -1.0;
    uint best_label = 0u;
    uint taken = 0u;

    // Samples are taken in batches of BATCH consecutive steps: the texture fetches of a batch
    // do not depend on each other, so a CPU implementation (lavapipe) overlaps their memory
    // latency instead of stalling on each in turn. Skipping and early termination work at
    // batch granularity; samples past the exit contribute nothing.
    vec3 step_tex = d * step_mm;
    if (mip && has_span) {
        // Prime the maximum from the brick with the highest density bound along the ray
        // (walked brick by brick on the step grid, no samples), so that the march below
        // skips every brick that cannot beat it. The maximum is order-independent, so the
        // projection is the same.
        float tb = t;
        uint top = 0u;
        float top_from = 0.0;
        float top_to = 0.0;
        while (tb <= span.y) {
            vec3 tex = o + tb * d;
            ivec3 b = clamp(ivec3(floor(tex * brick_scale)), ivec3(0), brick_max);
            uint m = texelFetch(occupancy, b, 0).r;
            float t_exit = slab(o, inv_d, vec3(b) / brick_scale, vec3(b + 1) / brick_scale).y;
            float t_next = tb + step_mm * max(1.0, ceil((t_exit - tb) / step_mm));
            if (m > top) { top = m; top_from = tb; top_to = t_next; }
            tb = t_next;
        }
        for (float ts = top_from; ts < top_to && ts <= span.y; ts += step_mm) {
            vec3 tex = o + ts * d;
            float vk = textureLod(density, tex, 0.0).r;
            if (vk > best_v) {
                uint lk = has_labels ? label_at(tex) : 0u;
                if (lut_at(vk, lk).a < 0.0) { best_v = vk; best_label = lk; }
            }
            taken += 1u;
        }
    }
    // The volume is marched in segments that end at the next overlay: the overlay is blended
    // between the samples in front of it and those behind, so tissue in front tints it and
    // tissue behind shows through it. Blending in a loop around the march rather than in it
    // keeps the overlay code out of the per-sample loop, whose size and live registers set
    // the cost of every sample on a CPU device (demo CT bone frame on lavapipe: 350 -> 240 ms
    // CPU per frame).
    // Overlays behind the volume, or (MIP) all of them, are blended by the same loop with an
    // empty march: the search then has one call site (on lavapipe each site walks the pixel's
    // list under a lane mask whether or not any lane needs it; three sites did).
    while (true) {
        t_cap = OVERLAYS && layers < MAX_OVERLAY_LAYERS
            ? next_overlay(pixel, eye_world, ray_world, t_after, cap, cap, cap_ab)
            : NO_HIT;
        float t_end = (mip || !OVERLAYS) ? span_end : min(span_end, t_cap);
        while (t <= t_end) {
            // Skip empty bricks in a loop of their own: a CPU device runs a loop body under a
            // lane mask until every lane has left it, so a skip taken in the sampling loop would
            // cost a whole batch of masked-off fetches. Here it costs one occupancy fetch.
            vec3 tex;
            float t_brick_exit;
            float v_first = 0.0;
            while (true) {
                tex = o + t * d;
                ivec3 b = clamp(ivec3(floor(tex * brick_scale)), ivec3(0), brick_max);
                uvec2 brick = texelFetch(occupancy, b, 0).rg;
                // Under MIP a brick whose highest density cannot beat the maximum so far is empty.
                bool empty = brick.r == 0u
                    || (mip && float(brick.r) * (1.0 / 65535.0) <= best_v);
                // Compositing leaps the cube of empty bricks around this one (radius - 1 more
                // on every side); MIP's emptiness depends on its maximum, so it goes brick by
                // brick.
                int leap = (!mip && brick.g > 1u) ? int(min(brick.g, 4096u)) - 1 : 0;
                vec3 lo = vec3(b - leap) / brick_scale;
                vec3 hi = vec3(b + 1 + leap) / brick_scale;
                t_brick_exit = slab(o, inv_d, lo, hi).y;
                if (!empty || t > t_end) break;
                // Jump to the first step past this brick, staying on the jittered step grid.
                t += step_mm * max(1.0, ceil((t_brick_exit - t) / step_mm));
            }
            if (t > t_end) break;
            if (!mip) {
                // Step over the samples too thin to be seen under any label (most of a brick that
                // holds a little bone, under a bone preset) with one density fetch each, in a loop
                // of its own for the same reason as above; they add nothing to the pixel. Stops at
                // the brick's exit so that empty bricks are skipped whole again.
                float t_scan_end = min(t_end, max(t_brick_exit, t));
                while (t <= t_scan_end) {
                    v_first = textureLod(density, o + t * d, 0.0).r;
                    if (v_first > p.march.w) break;
                    t += step_mm;
                    taken += 1u;
                }
                if (t > t_scan_end) continue;
                tex = o + t * d;
            }
            if (mip) {
                // Only a sample above the maximum so far needs its label and LUT entry (to know
                // whether it is visible at all).
                for (int k = 0; k < BATCH; k++) {
                    vec3 tk = tex + float(k) * step_tex;
                    float vk = textureLod(density, tk, 0.0).r;
                    if (vk > best_v && t + float(k) * step_mm <= t_end) {
                        uint lk = has_labels ? label_at(tk) : 0u;
                        if (lut_at(vk, lk).a < 0.0) { best_v = vk; best_label = lk; }
                    }
                }
                taken += uint(BATCH);
                t += float(BATCH) * step_mm;
                continue;
            }
            float v[BATCH];
            uint label[BATCH];
            // The scan stopped at the batch's first sample: its density is already known.
            v[0] = v_first;
            for (int k = 1; k < BATCH; k++) {
                v[k] = textureLod(density, tex + float(k) * step_tex, 0.0).r;
            }
            for (int k = 0; k < BATCH; k++) {
                label[k] = has_labels ? label_at(tex + float(k) * step_tex) : 0u;
            }
            vec4 c[BATCH];
            for (int k = 0; k < BATCH; k++) {
                c[k] = lut_at(v[k], label[k]);
            }
            // Samples of this batch up to the segment's end; the rest belong to the next one.
            int done = 0;
            for (int k = 0; k < BATCH; k++) {
                // The LUT holds log2(1 - opacity per unit distance): 0 means transparent.
                float tk = t + float(k) * step_mm;
                if (tk <= t_end) done = k + 1;
                if (c[k].a < 0.0 && tk <= t_end) {
                    if (mip) {
                        if (v[k] > best_v) { best_v = v[k]; best_label = label[k]; }
                    } else {
                        if (acc.a < p.march.z) {
                            float alpha = 1.0 - exp2(c[k].a * exponent);
                            vec3 rgb = shading ? shade(c[k].rgb, tex + float(k) * step_tex, ray_world) : c[k].rgb;
                            acc.rgb += (1.0 - acc.a) * alpha * rgb;
                            acc.a += (1.0 - acc.a) * alpha;
                            if (acc.a >= p.march.z) t_reached = tk;
                        }
                    }
                }
            }
            taken += uint(BATCH);
            if (acc.a >= p.march.z) break;
            t += float(max(done, 1)) * step_mm;
        }
        if (!OVERLAYS || t_cap == NO_HIT) break;
        vec4 c = overlay_colour(cap, eye_world, ray_world, t_cap, cap_ab);
        if (mip) {
            blend_under(overlay, c);
        } else if (acc.a < p.march.z) {
            blend_under(acc, c);
        } else {
            break;
        }
        layers++;
        t_after = t_cap;
    }
    if (has_span) {
        if (mip && best_v >= 0.0) {
            vec4 c = lut_at(best_v, best_label);
            float a = 1.0 - exp2(c.a);
            acc = vec4(c.rgb * a, a);
        }
        atomicAdd(counters.samples_taken, taken);
    }
    if (mip && overlay.a > 0.0) {
        blend_under(overlay, acc);
        acc = overlay;
    }
    if ((p.image.w & 8u) != 0u && pixel == uvec2(0u)) {
        counters.pick_depth_mm = t_reached;
    }
    imageStore(target, ivec2(pixel), vec4(clamp(acc.rgb, 0.0, 1.0), acc.a));
}
