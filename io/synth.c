#include "io/synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clcore/fsutil.h"
#include "io/png.h"
#include "io/rng.h"

/* ---- classes ---------------------------------------------------------- */

static const struct {
    const char *name;
    uint8_t rgb[3];
} CLASSES[CLSYNTH_SYN_NUM_CLASSES] = {
    {"sky", {70, 130, 180}},       {"building", {70, 70, 70}},
    {"road", {128, 64, 128}},      {"sidewalk", {244, 35, 232}},
    {"vegetation", {107, 142, 35}}, {"car", {0, 0, 142}},
    {"person", {220, 20, 60}},     {"pole", {153, 153, 153}},
    {"terrain", {152, 251, 152}},  {"sign", {220, 220, 0}},
};

const char *clsynth_synth_class_name(int id)
{
    return id >= 0 && id < CLSYNTH_SYN_NUM_CLASSES ? CLASSES[id].name : NULL;
}

void clsynth_synth_class_color(int id, uint8_t rgb[3])
{
    for (int k = 0; k < 3; k++)
        rgb[k] = id >= 0 && id < CLSYNTH_SYN_NUM_CLASSES ? CLASSES[id].rgb[k] : 0;
}

/* ---- noise (integer hash lattice; only + - * / floor) ----------------- */

typedef struct rgb {
    float r, g, b;
} rgb;

static rgb mk(float r, float g, float b)
{
    return (rgb){r, g, b};
}

static rgb mix(rgb a, rgb b, float t)
{
    return mk(a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t);
}

static rgb scale(rgb a, float k)
{
    return mk(a.r * k, a.g * k, a.b * k);
}

static float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

static float fracf(float x)
{
    return x - floorf(x);
}

static float hash01(int32_t x, int32_t y, uint32_t salt)
{
    uint64_t k = ((uint64_t)(uint32_t)x << 32 | (uint32_t)y) ^ ((uint64_t)salt * 0x9E3779B97F4A7C15ull);
    return (float)(clsynth_mix64(k) >> 40) * (1.0f / 16777216.0f);
}

/* Value noise in [0, 1) with smoothstep interpolation. */
static float vnoise(float x, float y, uint32_t salt)
{
    float fx = floorf(x), fy = floorf(y);
    int32_t ix = (int32_t)fx, iy = (int32_t)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3.0f - 2.0f * tx);
    ty = ty * ty * (3.0f - 2.0f * ty);
    float a = hash01(ix, iy, salt), b = hash01(ix + 1, iy, salt);
    float c = hash01(ix, iy + 1, salt), d = hash01(ix + 1, iy + 1, salt);
    return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

static float fbm(float x, float y, uint32_t salt, int octaves)
{
    float sum = 0.0f, amp = 0.5f, norm = 0.0f;
    for (int o = 0; o < octaves; o++) {
        sum += amp * vnoise(x, y, salt + (uint32_t)o * 7919u);
        norm += amp;
        x *= 2.03f;
        y *= 2.03f;
        amp *= 0.5f;
    }
    return sum / norm;
}

/* ---- scene description ------------------------------------------------ */

#define MAX_SEGS 48
#define MAX_OBJS 96

typedef struct facade_seg {
    float d0, d1;     /* extent along the street (m) */
    float height;     /* m */
    rgb wall;
    int brick;        /* brick texture */
    float floor_h, win_pitch, win_fw, win_fh; /* window grid (m, fractions) */
    rgb glass;
    uint32_t salt;
} facade_seg;

typedef struct facade_side {
    int present;
    float lat;        /* lateral position of the facade plane (m, signed) */
    float light;      /* sun-side brightness */
    int nseg;
    facade_seg seg[MAX_SEGS];
} facade_side;

enum obj_kind { OBJ_CAR, OBJ_PERSON, OBJ_POLE, OBJ_TREE };

typedef struct object {
    int kind;
    float t;          /* ground depth parameter: 1 = bottom row, 0 = horizon */
    float lat;        /* lateral position (m) */
    float w, h;       /* size (m) */
    rgb c1, c2, c3;   /* kind-specific colours */
    int variant;      /* car: front/rear; pole: sign type; person: unused */
    float extra;      /* tree: canopy radius; pole: sign size */
    int inst, inst2;  /* instance ids (pole, sign) */
    uint32_t salt;
    int order;        /* creation order: ties in sorting */
} object;

typedef struct scene {
    int W, H;
    float hy;         /* horizon row */
    float vx;         /* vanishing column */
    float ppm_b;      /* pixels per metre at the bottom row (t = 1) */
    float d_b;        /* depth of the bottom row (m) */
    float road_c;     /* lateral position of the road centre (m) */
    float road_half;  /* m */
    float side_w[2];  /* sidewalk widths left/right (m) */
    int lanes_dashed;
    rgb centre_line;
    float crosswalk_d; /* depth of a crosswalk, 0 = none */
    rgb sky_top, sky_hor, cloud, haze, asphalt, paving, grass;
    float cloudiness, fog, exposure;
    rgb tint;
    facade_side side[2];
    float *skyline;   /* (W) top row of the distant skyline */
    rgb skyline_col;
    int nobj;
    object obj[MAX_OBJS];
    uint32_t salt;
} scene;

typedef struct canvas {
    int w, h;
    rgb *px;          /* (H, W) */
    uint8_t *lab, *inst;
    float *depth;     /* surface depth parameter t per pixel, 0 for sky */
} canvas;

static void put(canvas *c, int x, int y, int cls, int inst, rgb col, float t)
{
    size_t i = (size_t)y * c->w + x;
    c->px[i] = col;
    c->lab[i] = (uint8_t)cls;
    c->inst[i] = (uint8_t)inst;
    c->depth[i] = t;
}

/* ---- scene parameters ------------------------------------------------- */

static rgb jitter(clsynth_rng *r, rgb c, float amount)
{
    return mk(clampf(c.r + clsynth_rng_range(r, -amount, amount), 0, 1),
              clampf(c.g + clsynth_rng_range(r, -amount, amount), 0, 1),
              clampf(c.b + clsynth_rng_range(r, -amount, amount), 0, 1));
}

static const rgb WALLS[] = {
    {0.55f, 0.28f, 0.20f}, {0.76f, 0.68f, 0.55f}, {0.55f, 0.55f, 0.54f}, {0.82f, 0.79f, 0.73f},
    {0.38f, 0.27f, 0.21f}, {0.62f, 0.45f, 0.32f}, {0.70f, 0.62f, 0.50f}, {0.45f, 0.50f, 0.55f},
};
static const rgb CARS[] = {
    {0.70f, 0.08f, 0.07f}, {0.10f, 0.20f, 0.55f}, {0.85f, 0.85f, 0.85f}, {0.08f, 0.08f, 0.09f},
    {0.55f, 0.57f, 0.60f}, {0.85f, 0.70f, 0.10f}, {0.15f, 0.40f, 0.20f}, {0.35f, 0.35f, 0.38f},
};
static const rgb SKIN[] = {
    {0.93f, 0.76f, 0.62f}, {0.78f, 0.57f, 0.42f}, {0.55f, 0.38f, 0.26f}, {0.36f, 0.24f, 0.17f},
};

#define PICK(r, arr) (arr[clsynth_rng_below(r, sizeof arr / sizeof arr[0])])

static void make_facades(scene *s, clsynth_rng *r)
{
    for (int k = 0; k < 2; k++) {
        facade_side *f = &s->side[k];
        f->present = clsynth_rng_float(r) < 0.8f;
        float grass = clsynth_rng_float(r) < 0.5f ? clsynth_rng_range(r, 0.5f, 3.0f) : 0.0f;
        float off = s->road_half + s->side_w[k] + grass;
        f->lat = k == 0 ? s->road_c - off : s->road_c + off;
        f->light = k == 0 ? 1.0f : 0.72f;
        float d = clsynth_rng_range(r, 0.3f, 2.0f);
        const float d_far = s->d_b * 60.0f;
        f->nseg = 0;
        while (d < d_far && f->nseg < MAX_SEGS) {
            if (f->nseg > 0 && clsynth_rng_float(r) < 0.18f)
                d += clsynth_rng_range(r, 3.0f, 10.0f); /* alley */
            facade_seg *g = &f->seg[f->nseg++];
            g->d0 = d;
            g->d1 = d + clsynth_rng_range(r, 7.0f, 28.0f);
            d = g->d1;
            g->height = clsynth_rng_range(r, 7.0f, 32.0f);
            g->wall = jitter(r, PICK(r, WALLS), 0.06f);
            g->brick = clsynth_rng_float(r) < 0.35f;
            g->floor_h = clsynth_rng_range(r, 2.8f, 3.8f);
            g->win_pitch = clsynth_rng_range(r, 2.2f, 4.0f);
            g->win_fw = clsynth_rng_range(r, 0.35f, 0.65f);
            g->win_fh = clsynth_rng_range(r, 0.40f, 0.65f);
            g->glass = jitter(r, mk(0.16f, 0.21f, 0.28f), 0.05f);
            g->salt = (uint32_t)clsynth_rng_u64(r);
        }
    }
    if (clsynth_rng_float(r) < 0.5f) { /* sun from the right instead */
        s->side[0].light = 0.72f;
        s->side[1].light = 1.0f;
    }
}

static object *new_obj(scene *s, int kind, int *next_inst)
{
    if (s->nobj >= MAX_OBJS || *next_inst > 250)
        return NULL;
    object *o = &s->obj[s->nobj];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->order = s->nobj++;
    if (kind != OBJ_TREE)
        o->inst = (*next_inst)++;
    return o;
}

/* Depth parameter for an object that should be at least min_px tall. */
static float pick_t(scene *s, clsynth_rng *r, float height_m, float min_px)
{
    float t_min = min_px / (height_m * s->ppm_b);
    if (t_min < 0.08f)
        t_min = 0.08f;
    if (t_min > 0.9f)
        t_min = 0.9f;
    /* more objects far away, as in a real street */
    float u = clsynth_rng_float(r);
    return t_min + (1.05f - t_min) * u * u;
}

static void make_objects(scene *s, clsynth_rng *r)
{
    int next_inst = 1;
    int ncar = clsynth_rng_int(r, 0, 5), nper = clsynth_rng_int(r, 0, 6);
    int npole = clsynth_rng_int(r, 1, 4), ntree = clsynth_rng_int(r, 0, 6);
    for (int i = 0; i < ncar; i++) {
        object *o = new_obj(s, OBJ_CAR, &next_inst);
        if (!o)
            break;
        o->w = clsynth_rng_range(r, 1.65f, 1.95f);
        o->h = clsynth_rng_range(r, 1.35f, 1.65f);
        o->t = pick_t(s, r, o->h, 4.0f);
        float lane = s->road_half * 0.5f;
        int right = clsynth_rng_float(r) < 0.6f;
        int parked = clsynth_rng_float(r) < 0.2f;
        o->lat = s->road_c + (right ? 1.0f : -1.0f) *
                                 (parked ? s->road_half - o->w * 0.5f - 0.2f
                                         : lane + clsynth_rng_range(r, -0.3f, 0.3f));
        o->variant = right ? 0 : 1; /* 0 rear view, 1 front view (oncoming) */
        o->c1 = jitter(r, PICK(r, CARS), 0.05f);
        o->salt = (uint32_t)clsynth_rng_u64(r);
    }
    for (int i = 0; i < nper; i++) {
        object *o = new_obj(s, OBJ_PERSON, &next_inst);
        if (!o)
            break;
        o->h = clsynth_rng_range(r, 1.55f, 1.90f);
        o->w = 0.5f;
        o->t = pick_t(s, r, o->h, 4.0f);
        int k = clsynth_rng_float(r) < 0.5f;
        float off = s->road_half + clsynth_rng_range(r, 0.5f, s->side_w[k] - 0.3f);
        o->lat = s->road_c + (k ? off : -off);
        o->c1 = PICK(r, SKIN);
        o->c2 = mk(clsynth_rng_float(r), clsynth_rng_float(r), clsynth_rng_float(r));
        o->c3 = scale(mk(clsynth_rng_float(r), clsynth_rng_float(r), clsynth_rng_float(r)), 0.45f);
    }
    for (int i = 0; i < npole; i++) {
        object *o = new_obj(s, OBJ_POLE, &next_inst);
        if (!o)
            break;
        o->h = clsynth_rng_range(r, 3.5f, 7.0f);
        o->w = 0.16f;
        o->t = pick_t(s, r, o->h, 8.0f);
        int k = clsynth_rng_float(r) < 0.5f;
        float off = s->road_half + 0.45f;
        o->lat = s->road_c + (k ? off : -off);
        o->c1 = jitter(r, mk(0.45f, 0.46f, 0.48f), 0.08f);
        o->variant = clsynth_rng_int(r, 0, 3); /* 0 no sign, 1 round, 2 square, 3 diamond */
        o->extra = clsynth_rng_range(r, 0.5f, 0.8f);
        if (o->variant && next_inst <= 250)
            o->inst2 = next_inst++;
        else
            o->variant = 0;
    }
    for (int i = 0; i < ntree; i++) {
        object *o = new_obj(s, OBJ_TREE, &next_inst);
        if (!o)
            break;
        o->extra = clsynth_rng_range(r, 1.4f, 2.8f); /* canopy radius */
        o->h = clsynth_rng_range(r, 1.8f, 3.2f);     /* trunk height */
        o->t = pick_t(s, r, o->h + 2 * o->extra, 6.0f);
        int k = clsynth_rng_float(r) < 0.5f;
        float off = s->road_half + s->side_w[k] * clsynth_rng_range(r, 0.6f, 0.9f);
        o->lat = s->road_c + (k ? off : -off);
        o->c1 = jitter(r, mk(0.20f, 0.38f, 0.12f), 0.07f);
        o->c2 = jitter(r, mk(0.30f, 0.22f, 0.14f), 0.04f);
        o->salt = (uint32_t)clsynth_rng_u64(r);
    }
}

static void make_scene(scene *s, clsynth_rng *r)
{
    const int W = s->W, H = s->H;
    s->hy = H * clsynth_rng_range(r, 0.36f, 0.55f);
    s->vx = W * clsynth_rng_range(r, 0.38f, 0.62f);
    float cam_h = clsynth_rng_range(r, 1.5f, 2.8f);
    s->ppm_b = (H - s->hy) / cam_h;
    s->d_b = (float)W / s->ppm_b; /* focal length = W pixels */
    s->road_half = clsynth_rng_range(r, 3.0f, 5.5f);
    s->road_c = clsynth_rng_range(r, -0.6f, 0.6f) * s->road_half;
    s->side_w[0] = clsynth_rng_range(r, 1.8f, 4.0f);
    s->side_w[1] = clsynth_rng_range(r, 1.8f, 4.0f);
    s->lanes_dashed = clsynth_rng_float(r) < 0.7f;
    s->centre_line = clsynth_rng_float(r) < 0.7f ? mk(0.9f, 0.9f, 0.88f) : mk(0.9f, 0.75f, 0.2f);
    s->crosswalk_d = clsynth_rng_float(r) < 0.35f ? s->d_b * clsynth_rng_range(r, 1.3f, 4.0f) : 0;
    float sky = clsynth_rng_float(r);
    if (sky < 0.65f) { /* clear */
        s->sky_top = jitter(r, mk(0.20f, 0.42f, 0.78f), 0.06f);
        s->sky_hor = jitter(r, mk(0.70f, 0.82f, 0.93f), 0.04f);
    } else if (sky < 0.85f) { /* overcast */
        float g = clsynth_rng_range(r, 0.55f, 0.75f);
        s->sky_top = mk(g, g + 0.02f, g + 0.05f);
        s->sky_hor = mk(g + 0.15f, g + 0.16f, g + 0.17f);
    } else { /* evening */
        s->sky_top = jitter(r, mk(0.25f, 0.30f, 0.55f), 0.05f);
        s->sky_hor = jitter(r, mk(0.95f, 0.65f, 0.40f), 0.05f);
    }
    s->cloudiness = clsynth_rng_range(r, 0.1f, 0.7f);
    s->cloud = mix(s->sky_hor, mk(1, 1, 1), 0.7f);
    s->haze = mix(s->sky_hor, mk(0.7f, 0.7f, 0.72f), 0.3f);
    s->fog = clsynth_rng_range(r, 0.25f, 0.6f);
    s->asphalt = jitter(r, mk(0.33f, 0.33f, 0.35f), 0.05f);
    s->paving = jitter(r, mk(0.62f, 0.60f, 0.57f), 0.06f);
    s->grass = jitter(r, mk(0.30f, 0.45f, 0.18f), 0.06f);
    s->exposure = clsynth_rng_range(r, 0.85f, 1.12f);
    s->tint = mk(clsynth_rng_range(r, 0.95f, 1.05f), 1.0f, clsynth_rng_range(r, 0.95f, 1.05f));
    s->skyline_col = mix(s->sky_hor, mk(0.45f, 0.47f, 0.52f), 0.55f);
    /* distant skyline: blocks of random width and height above the horizon */
    for (int x = 0; x < W;) {
        int bw = clsynth_rng_int(r, 2, 2 + W / 10);
        float top = s->hy - H * clsynth_rng_range(r, 0.0f, 0.12f);
        for (int k = 0; k < bw && x < W; k++, x++)
            s->skyline[x] = top;
    }
    make_facades(s, r);
    make_objects(s, r);
    s->salt = (uint32_t)clsynth_rng_u64(r);
}

/* ---- background: sky, skyline, ground, facades ------------------------ */

static rgb sky_color(const scene *s, float fx, float fy)
{
    float v = clampf(fy / s->hy, 0, 1);
    rgb c = mix(s->sky_top, s->sky_hor, v * v);
    float n = fbm(fx / (s->W * 0.18f) + 3.1f, fy / (s->H * 0.07f), s->salt ^ 0xC10Du, 4);
    float m = clampf((n - (1.0f - s->cloudiness)) * 3.0f, 0, 1);
    rgb cl = scale(s->cloud, 1.0f - 0.25f * clampf((n - 0.5f) * 2.0f, 0, 1));
    return mix(c, cl, m);
}

/* Ground pixel at depth t and lateral position lat (m), depth d (m). */
static void ground(const scene *s, canvas *c, int x, int y, float t, float lat, float d)
{
    const float ppm = s->ppm_b * t, u = lat - s->road_c;
    float rel = u < 0 ? -u : u;
    float px_per_m_depth = t * (s->H - s->hy) / d; /* rows per metre along the street */
    float grain = hash01(x, y, s->salt ^ 0x6A11u) - 0.5f;
    if (rel < s->road_half) {
        float blot = fbm(lat * 0.8f, d * 0.4f, s->salt ^ 0xA5u, 3) - 0.5f;
        rgb col = scale(s->asphalt, 1.0f + 0.25f * blot + 0.12f * grain);
        float line_hw = 0.08f > 0.45f / ppm ? 0.08f : 0.45f / ppm;
        int mark = 0;
        float dash = 6.0f * px_per_m_depth; /* rows per dash period */
        if (u > -line_hw && u < line_hw) {
            if (!s->lanes_dashed || dash < 2.0f)
                mark = s->lanes_dashed ? 2 : 1; /* 2: dashes blend to half */
            else
                mark = fracf(d / 6.0f) < 0.5f;
        }
        if (mark) {
            col = mix(col, s->centre_line, mark == 2 ? 0.5f : 0.9f);
        } else if (rel > s->road_half - 0.35f - line_hw && rel < s->road_half - 0.35f + line_hw) {
            col = mix(col, mk(0.88f, 0.88f, 0.86f), 0.85f);
        } else if (s->crosswalk_d > 0 && d > s->crosswalk_d && d < s->crosswalk_d + 3.0f &&
                   fracf(u / 1.0f) < 0.5f && ppm > 2.0f) {
            col = mix(col, mk(0.9f, 0.9f, 0.88f), 0.85f);
        }
        put(c, x, y, CLSYNTH_SYN_ROAD, 0, col, t);
        return;
    }
    int k = u < 0 ? 0 : 1;
    if (rel < s->road_half + s->side_w[k]) {
        rgb col = scale(s->paving, 1.0f + 0.10f * grain);
        if (rel < s->road_half + 0.2f) { /* curb */
            col = scale(s->paving, 1.12f);
        } else if (px_per_m_depth * 0.8f > 3.0f && ppm * 0.8f > 3.0f) {
            float jd = fracf(d / 0.8f), jl = fracf(lat / 0.8f);
            if (jd < 0.08f || jl < 0.08f)
                col = scale(col, 0.8f);
        }
        put(c, x, y, CLSYNTH_SYN_SIDEWALK, 0, col, t);
        return;
    }
    float clump = fbm(lat * 1.5f, d * 0.7f, s->salt ^ 0x6EE5u, 3) - 0.5f;
    rgb col = mix(s->grass, mk(0.45f, 0.40f, 0.25f), clampf(clump + 0.3f, 0, 1) * 0.6f);
    col = scale(col, 1.0f + 0.25f * grain);
    put(c, x, y, CLSYNTH_SYN_TERRAIN, 0, col, t);
}

/* Facade pixel colour at street position d (m), height hm (m); px_h and
 * px_w are the pixel size of one window cell (for level of detail). */
static rgb facade_color(const facade_seg *g, float d, float hm, float px_w, float px_h,
                        float light, int x, int y)
{
    float grain = hash01(x, y, g->salt) - 0.5f;
    rgb wall = scale(g->wall, 1.0f + 0.10f * grain);
    if (g->brick && g->floor_h * px_h > 0) {
        float rows = px_h * 0.25f / g->floor_h; /* pixels per brick course */
        if (rows > 2.5f && fracf(hm / 0.25f) < 0.15f)
            wall = scale(wall, 0.78f);
    }
    if (hm > g->height - 0.35f) /* cornice */
        return scale(wall, 0.7f * light);
    float cx = (d - g->d0) / g->win_pitch, cy = hm / g->floor_h;
    rgb glass = mix(g->glass, mk(0.45f, 0.55f, 0.65f), clampf(fracf(cy) * 0.6f, 0, 1));
    int32_t wx = (int32_t)floorf(cx), wy = (int32_t)floorf(cy);
    if (hash01(wx, wy, g->salt ^ 0x117u) < 0.08f)
        glass = mk(0.95f, 0.82f, 0.45f); /* lit window */
    float fx = fracf(cx), fy = fracf(cy);
    float wfw = g->win_fw, wfh = g->win_fh;
    if (cy < 1.0f) { /* shop front: taller glass */
        wfh = 0.7f;
        wfw = 0.75f;
    }
    rgb out;
    if (px_w < 2.5f || px_h < 2.5f) { /* cells too small to draw: average */
        out = mix(wall, glass, wfw * wfh);
    } else {
        int in_win = fx > (1.0f - wfw) * 0.5f && fx < (1.0f + wfw) * 0.5f &&
                     fy > (1.0f - wfh) * 0.35f && fy < (1.0f - wfh) * 0.35f + wfh;
        out = in_win ? glass : wall;
    }
    return scale(out, light);
}

static void background(const scene *s, canvas *c)
{
    const int W = s->W, H = s->H;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float fx = x + 0.5f, fy = y + 0.5f;
            if (fy > s->hy) {
                float t = (fy - s->hy) / (H - s->hy);
                ground(s, c, x, y, t, (fx - s->vx) / (s->ppm_b * t), s->d_b / t);
            } else if (fy >= s->skyline[x]) {
                float n = hash01(x, y, s->salt ^ 0x5Cu) - 0.5f;
                put(c, x, y, CLSYNTH_SYN_BUILDING, 0, scale(s->skyline_col, 1.0f + 0.08f * n),
                    0.01f);
            } else {
                put(c, x, y, CLSYNTH_SYN_SKY, 0, sky_color(s, fx, fy), 0.0f);
            }
            /* facade planes parallel to the street */
            const facade_side *f = &s->side[fx < s->vx ? 0 : 1];
            float dx = fx - s->vx;
            if (!f->present || dx * f->lat <= 0)
                continue;
            float t = dx / (f->lat * s->ppm_b);
            float d = s->d_b / t, ppm = s->ppm_b * t;
            float bottom = s->hy + t * (H - s->hy);
            float hm = (bottom - fy) / ppm;
            if (hm < 0)
                continue;
            for (int i = 0; i < f->nseg; i++) {
                const facade_seg *g = &f->seg[i];
                if (d < g->d0 || d >= g->d1 || hm > g->height)
                    continue;
                float adx = dx < 0 ? -dx : dx;
                float px_w = g->win_pitch * adx / d, px_h = g->floor_h * ppm;
                put(c, x, y, CLSYNTH_SYN_BUILDING, 0,
                    facade_color(g, d, hm, px_w, px_h, f->light, x, y), t);
                break;
            }
        }
}

/* ---- objects ---------------------------------------------------------- */

/* Pixel box of an object at depth t, lateral lat, half width hw and height
 * h (m); returns the ground row, centre column and pixels per metre. */
static void obj_frame(const scene *s, const object *o, float *gx, float *gy, float *ppm)
{
    *ppm = s->ppm_b * o->t;
    *gx = s->vx + o->lat * *ppm;
    *gy = s->hy + o->t * (s->H - s->hy);
}

typedef int (*shade_fn)(const scene *s, const object *o, float X, float Y, float ppm, int x,
                        int y, rgb *col, int *cls, int *inst);

static void draw(const scene *s, canvas *c, const object *o, float half_w, float top,
                 float bottom, shade_fn fn)
{
    float gx, gy, ppm;
    obj_frame(s, o, &gx, &gy, &ppm);
    int x0 = (int)floorf(gx - half_w * ppm) - 1, x1 = (int)floorf(gx + half_w * ppm) + 1;
    int y0 = (int)floorf(gy - top * ppm) - 1, y1 = (int)floorf(gy - bottom * ppm) + 1;
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > s->W - 1)
        x1 = s->W - 1;
    if (y1 > s->H - 1)
        y1 = s->H - 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float X = (x + 0.5f - gx) / ppm, Y = (gy - (y + 0.5f)) / ppm;
            rgb col;
            int cls, inst;
            if (fn(s, o, X, Y, ppm, x, y, &col, &cls, &inst))
                put(c, x, y, cls, inst, col, o->t);
        }
}

static int shade_car(const scene *s, const object *o, float X, float Y, float ppm, int x, int y,
                     rgb *col, int *cls, int *inst)
{
    const float hw = o->w * 0.5f, h = o->h, ax = X < 0 ? -X : X;
    float grain = hash01(x, y, o->salt) - 0.5f;
    *cls = CLSYNTH_SYN_CAR;
    *inst = o->inst;
    if (Y < 0.42f && Y >= 0.0f && ax > hw - 0.38f && ax < hw - 0.04f) { /* wheels */
        *col = mk(0.05f + 0.03f * grain, 0.05f, 0.06f);
        return 1;
    }
    if (Y >= 0.28f && Y < 0.95f && ax < hw) { /* body */
        float shade = 0.75f + 0.35f * (Y - 0.28f) / 0.67f;
        *col = scale(o->c1, shade + 0.06f * grain);
        if (Y > 0.62f && Y < 0.80f && ax > hw - 0.32f && ax < hw - 0.05f)
            *col = o->variant ? mk(0.95f, 0.93f, 0.80f) : mk(0.80f, 0.08f, 0.05f);
        else if (Y > 0.38f && Y < 0.52f && ax < 0.26f)
            *col = mk(0.88f, 0.88f, 0.86f); /* licence plate */
        else if (Y < 0.34f)
            *col = scale(o->c1, 0.45f); /* bumper shadow */
        return 1;
    }
    if (Y >= 0.95f && Y < h) { /* cabin, narrowing upwards */
        float k = (Y - 0.95f) / (h - 0.95f);
        float cw = hw * (0.92f - 0.18f * k);
        if (ax >= cw)
            return 0;
        int glass = ax < cw - 0.10f && Y > 1.0f && Y < h - 0.08f;
        if (glass) {
            rgb g = mix(mk(0.10f, 0.12f, 0.15f), mix(s->sky_hor, mk(0.3f, 0.3f, 0.3f), 0.5f),
                        clampf(k * 0.8f + 0.1f * (X / hw), 0, 1));
            *col = scale(g, 1.0f + 0.05f * grain);
        } else {
            *col = scale(o->c1, 1.05f + 0.05f * grain);
        }
        return 1;
    }
    (void)ppm;
    return 0;
}

static int shade_person(const scene *s, const object *o, float X, float Y, float ppm, int x,
                        int y, rgb *col, int *cls, int *inst)
{
    const float h = o->h, ax = X < 0 ? -X : X;
    float grain = hash01(x, y, (uint32_t)o->inst * 31u + s->salt) - 0.5f;
    float minw = 0.5f / ppm; /* at least a pixel wide */
    *cls = CLSYNTH_SYN_PERSON;
    *inst = o->inst;
    float head_c = h - 0.12f, hr = 0.11f > minw ? 0.11f : minw;
    if ((Y - head_c) * (Y - head_c) + ax * ax < hr * hr) {
        *col = Y > head_c + 0.04f ? scale(o->c3, 0.6f) : o->c1; /* hair / face */
        return 1;
    }
    float tw = 0.21f > minw ? 0.21f : minw;
    if (Y >= 0.48f * h && Y < h - 0.22f && ax < tw) {
        *col = scale(o->c2, 0.85f + 0.2f * (Y / h) + 0.08f * grain);
        return 1;
    }
    float lw = 0.15f > minw ? 0.15f : minw;
    if (Y >= 0.0f && Y < 0.48f * h && ax < lw && (ax > 0.03f || ppm < 12.0f)) {
        *col = scale(o->c3, 0.9f + 0.1f * grain);
        return 1;
    }
    return 0;
}

static int shade_pole(const scene *s, const object *o, float X, float Y, float ppm, int x,
                      int y, rgb *col, int *cls, int *inst)
{
    (void)s;
    (void)x;
    (void)y;
    const float ax = X < 0 ? -X : X;
    if (o->variant) { /* sign at the top, drawn over the pole */
        float sz = o->extra * 0.5f, cy = o->h - sz;
        float dy = Y - cy, ady = dy < 0 ? -dy : dy;
        int in = 0, border = 0;
        if (o->variant == 1) {
            float r2 = dy * dy + X * X;
            in = r2 < sz * sz;
            border = r2 > sz * sz * 0.55f;
        } else if (o->variant == 2) {
            in = ax < sz && ady < sz;
            border = ax > sz * 0.75f || ady > sz * 0.75f;
        } else {
            in = ax + ady < sz * 1.2f;
            border = ax + ady > sz * 0.9f;
        }
        if (in) {
            static const rgb fill[4] = {{0, 0, 0}, {0.92f, 0.92f, 0.92f}, {0.10f, 0.25f, 0.65f},
                                        {0.95f, 0.78f, 0.10f}};
            *col = border ? (o->variant == 1 ? mk(0.8f, 0.1f, 0.1f) : mk(0.92f, 0.92f, 0.92f))
                          : fill[o->variant];
            *cls = CLSYNTH_SYN_SIGN;
            *inst = o->inst2;
            return 1;
        }
    }
    float hw = 0.08f > 0.5f / ppm ? 0.08f : 0.5f / ppm;
    if (Y >= 0 && Y < o->h && ax < hw) {
        *col = scale(o->c1, X > 0 ? 1.25f : 0.85f);
        *cls = CLSYNTH_SYN_POLE;
        *inst = o->inst;
        return 1;
    }
    return 0;
}

static int shade_tree(const scene *s, const object *o, float X, float Y, float ppm, int x,
                      int y, rgb *col, int *cls, int *inst)
{
    const float r = o->extra, cy = o->h + r * 0.75f, ax = X < 0 ? -X : X;
    *cls = CLSYNTH_SYN_VEGETATION;
    *inst = 0;
    float dy = Y - cy;
    float rr = r * (0.78f + 0.4f * fbm(X * 1.3f + 7.0f, Y * 1.3f, o->salt, 3));
    if (X * X + dy * dy * 1.15f < rr * rr) {
        float leaf = fbm(X * 3.5f, Y * 3.5f, o->salt ^ 0x1EAFu, 3);
        float light = 0.8f + 0.35f * clampf((dy - X * 0.5f) / r, -1, 1);
        float speck = hash01(x, y, o->salt) < 0.12f ? 0.6f : 1.0f;
        *col = scale(o->c1, (0.6f + 0.8f * leaf) * light * speck);
        return 1;
    }
    float tw = 0.14f > 0.5f / ppm ? 0.14f : 0.5f / ppm;
    if (Y >= 0 && Y < cy && ax < tw) {
        *col = scale(o->c2, 0.85f + 0.3f * (hash01(x, y, o->salt ^ 0xBAu) - 0.5f) +
                                (X > 0 ? 0.15f : 0.0f));
        return 1;
    }
    (void)s;
    return 0;
}

/* Soft dark patch on the ground under a car (pixels keep their label). */
static void car_shadow(const scene *s, canvas *c, const object *o)
{
    float gx, gy, ppm;
    obj_frame(s, o, &gx, &gy, &ppm);
    float hw = (o->w * 0.5f + 0.15f) * ppm, hh = 0.25f * ppm + 1.0f;
    for (int y = (int)floorf(gy - hh); y <= (int)floorf(gy + 0.1f * ppm); y++)
        for (int x = (int)floorf(gx - hw); x <= (int)floorf(gx + hw); x++) {
            if (x < 0 || y < 0 || x >= s->W || y >= s->H)
                continue;
            size_t i = (size_t)y * s->W + x;
            if (c->lab[i] == CLSYNTH_SYN_ROAD)
                c->px[i] = scale(c->px[i], 0.55f);
        }
}

static int cmp_obj(const void *a, const void *b)
{
    const object *p = a, *q = b;
    if (p->t != q->t)
        return p->t < q->t ? -1 : 1;
    return p->order - q->order;
}

static void draw_objects(scene *s, canvas *c)
{
    qsort(s->obj, s->nobj, sizeof *s->obj, cmp_obj); /* far first */
    for (int i = 0; i < s->nobj; i++) {
        const object *o = &s->obj[i];
        switch (o->kind) {
        case OBJ_CAR:
            car_shadow(s, c, o);
            draw(s, c, o, o->w * 0.5f, o->h, 0.0f, shade_car);
            break;
        case OBJ_PERSON:
            draw(s, c, o, 0.3f, o->h, 0.0f, shade_person);
            break;
        case OBJ_POLE:
            draw(s, c, o, o->extra * 0.7f + 0.1f, o->h, 0.0f, shade_pole);
            break;
        case OBJ_TREE:
            draw(s, c, o, o->extra * 1.3f, o->h + o->extra * 2.2f, 0.0f, shade_tree);
            break;
        }
    }
}

/* ---- finishing: fog, exposure, noise ---------------------------------- */

static void finish(const scene *s, const canvas *c, clsynth_image *img)
{
    for (int y = 0; y < s->H; y++)
        for (int x = 0; x < s->W; x++) {
            size_t i = (size_t)y * s->W + x;
            rgb col = c->px[i];
            float t = c->depth[i];
            if (c->lab[i] != CLSYNTH_SYN_SKY) {
                float a = 1.0f - clampf(t, 0, 1);
                col = mix(col, s->haze, s->fog * a * a * a * a);
            }
            float n = (hash01(x, y, s->salt ^ 0x4015Eu) - 0.5f) * (5.0f / 255.0f);
            float v[3] = {col.r * s->tint.r, col.g * s->tint.g, col.b * s->tint.b};
            for (int k = 0; k < 3; k++) {
                float q = (v[k] * s->exposure + n) * 255.0f + 0.5f;
                img->data[3 * i + k] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : (int)q);
            }
        }
}

int clsynth_synth_scene(uint64_t seed, int split, int index, int w, int h, clsynth_image *image,
                        clsynth_image *label, clsynth_image *instance, clsynth_err *err)
{
    memset(image, 0, sizeof *image);
    memset(label, 0, sizeof *label);
    memset(instance, 0, sizeof *instance);
    if (w < 16 || h < 16 || w > 8192 || h > 8192)
        return clsynth_fail(err, "synthetic scene size %dx%d outside 16..8192", w, h);
    scene *s = calloc(1, sizeof *s);
    canvas c = {w, h, NULL, NULL, NULL, NULL};
    size_t n = (size_t)w * h;
    int rc = -1;
    if (!s || !(s->skyline = malloc(sizeof(float) * w)) || !(c.px = malloc(sizeof(rgb) * n)) ||
        !(c.depth = malloc(sizeof(float) * n))) {
        clsynth_fail(err, "out of memory for a %dx%d synthetic scene", w, h);
        goto done;
    }
    if (clsynth_image_alloc(image, w, h, 3, err) || clsynth_image_alloc(label, w, h, 1, err) ||
        clsynth_image_alloc(instance, w, h, 1, err))
        goto done;
    c.lab = label->data;
    c.inst = instance->data;
    s->W = w;
    s->H = h;
    clsynth_rng r;
    uint64_t key[3] = {seed, (uint64_t)split, (uint64_t)index};
    clsynth_rng_seed(&r, key, 3);
    make_scene(s, &r);
    background(s, &c);
    draw_objects(s, &c);
    finish(s, &c, image);
    rc = 0;
done:
    if (rc) {
        clsynth_image_free(image);
        clsynth_image_free(label);
        clsynth_image_free(instance);
    }
    if (s)
        free(s->skyline);
    free(s);
    free(c.px);
    free(c.depth);
    return rc;
}

/* ---- writing a dataset ------------------------------------------------ */

/* mkdir -p: `dataset synth --out a/b` creates a as well. */
static int make_dir(const char *path, clsynth_err *err)
{
    return clsynth_mkdirs(path, err);
}

static int write_split(const char *dir, const char *split, int split_id, int count, int w,
                       int h, uint64_t seed, clsynth_err *err)
{
    char path[4096];
    static const char *const kinds[3] = {"label", "img", "inst"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s_%s", dir, split, kinds[k]);
        if (make_dir(path, err))
            return -1;
    }
    for (int i = 0; i < count; i++) {
        clsynth_image img[3]; /* label, image, instance in kinds[] order */
        if (clsynth_synth_scene(seed, split_id, i, w, h, &img[1], &img[0], &img[2], err))
            return -1;
        int rc = 0;
        for (int k = 0; k < 3 && rc == 0; k++) {
            snprintf(path, sizeof path, "%s/%s_%s/%06d.png", dir, split, kinds[k], i);
            rc = clsynth_png_write(path, &img[k], err);
        }
        for (int k = 0; k < 3; k++)
            clsynth_image_free(&img[k]);
        if (rc)
            return -1;
    }
    return 0;
}

int clsynth_synth_write(const char *dir, int train_count, int val_count, int w, int h,
                        uint64_t seed, clsynth_err *err)
{
    if (train_count < 0 || val_count < 0)
        return clsynth_fail(err, "negative sample count");
    if (make_dir(dir, err) || write_split(dir, "train", 0, train_count, w, h, seed, err) ||
        write_split(dir, "val", 1, val_count, w, h, seed, err))
        return -1;
    char path[4096], text[1024];
    size_t k = (size_t)snprintf(text, sizeof text, "# id name r g b (clsynth synthetic streets)\n");
    for (int i = 0; i < CLSYNTH_SYN_NUM_CLASSES; i++)
        k += (size_t)snprintf(text + k, sizeof text - k, "%d %s %d %d %d\n", i, CLASSES[i].name,
                              CLASSES[i].rgb[0], CLASSES[i].rgb[1], CLASSES[i].rgb[2]);
    snprintf(path, sizeof path, "%s/classes.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return clsynth_fail(err, "%s: cannot create: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    if (fclose(f) != 0 || bad)
        return clsynth_fail(err, "%s: cannot write: %s", path, strerror(errno));
    return 0;
}
