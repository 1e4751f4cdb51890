// Verilator testbench for simd_axi (the fixed-SIMD engine with its AXI4-Lite registers,
// AXI4 read master and AXI4-Stream image / logits ports): an AXI4 memory model with random
// stalls and latency, a driver of the register block, and a loop over the images, one at a
// time.
//
//   Vsimd_axi mem=M.bin out=Y.bin timing=T.txt images=N img_base=B img_stride=S img_words=W
//             wbase=WB wbeats=WN pbase=PB pbeats=PN h=H act=A k=K pbytes=PB tw=TW burst=BL
//             [latency=L] [jitter=J] [mem_stall=P] [out_stall=P] [slverr_beat=N] [seed=S]
//             [+verilator+rand+reset+2]
//
// M.bin         the memory image (fpga/sim_fixed.py memory_image): weight stream,
//               parameter stream, the images
// Y.bin         written: N * K signed bytes, the logits of the images in order
// T.txt         written: one line per image, "start done" in clock cycles, done - start
//               being the CYCLES register (the clock START was taken to the one its last
//               logit left the engine)
// img_base, img_stride, img_words   image n is img_words words of tw bytes at beat
//               img_base + n * img_stride; the testbench streams it in (s_axis_img)
// wbase, wbeats, pbase, pbeats   the weight and parameter streams (beats; written to the
//               registers as bytes)
// h, act        the model: hidden width, 0 ReLU / 1 LERP-PSA; k logits per image
// pbytes, tw, burst   the RTL's PB, TW and BL (checked against INFO)
// latency=L     the first beat of a burst comes L clocks (>= 1) after its AR handshake at
//               the earliest, plus a random 0 .. J clocks (jitter=J); bursts are answered
//               in order, one beat per clock at most
// mem_stall=P   ARREADY low, and RVALID held back before a beat, each with probability P
// out_stall=P   the logits' TREADY low, and the image's TVALID held back, with probability P
// slverr_beat=N answer beat N (0-based, counted over the run) with RRESP = SLVERR
// comb_check=N  on every N-th clock (0: never), between the edges, invert every input port
//               (reset included), evaluate, and fail if any output port changed: a
//               combinational path from an input port to an output port; then restore them
//
// Checked on every AR: INCR bursts, full-width beats, ARLEN + 1 <= BL, no burst across a
// 4 KB boundary, inside the memory (and, with comb_check, no input-to-output path). Prints "image I CYCLES" after each image, then
// "cycles=C images=N" and "bursts=B beats=N max_len=L page_cuts=X" (X: bursts cut short at a
// 4 KB boundary) and exits 0. Exits 1 when an AXI rule is broken, TLAST is misplaced or an
// image takes more than 10 000 000 clocks; exits 3 when STATUS shows an error bit after an
// image (the line names the bits: ERR_CFG ERR_RESP ERR_RLAST ERR_IMG).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vsimd_axi.h"
#include "verilated.h"

static const char *arg(int argc, char **argv, const char *key, const char *dflt) {
    const size_t n = std::strlen(key);
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    if (!dflt) {
        std::fprintf(stderr, "tb_simd: missing argument %s=...\n", key);
        std::exit(2);
    }
    return dflt;
}

// a wide port is a 32-bit, 64-bit or VlWide Verilator type depending on its width
static void put(uint32_t &d, const uint32_t *w) { d = w[0]; }
static void put(uint64_t &d, const uint32_t *w) { d = ((uint64_t)w[1] << 32) | w[0]; }
template <std::size_t N> static void put(VlWide<N> &d, const uint32_t *w) {
    for (std::size_t i = 0; i < N; ++i) d[i] = w[i];
}
static void get(const uint32_t &d, uint32_t *w) { w[0] = d; }
static void get(const uint64_t &d, uint32_t *w) { w[0] = (uint32_t)d; w[1] = (uint32_t)(d >> 32); }
template <std::size_t N> static void get(const VlWide<N> &d, uint32_t *w) {
    for (std::size_t i = 0; i < N; ++i) w[i] = d[i];
}

struct Burst {
    uint64_t addr;     // byte address
    unsigned len;      // beats
    uint64_t due;      // first beat not before this clock
};

static void fail(int code, const char *msg, uint64_t cycle) {
    std::fprintf(stderr, "tb_simd: %s (clock %llu)\n", msg, (unsigned long long)cycle);
    std::exit(code);
}

int main(int argc, char **argv) {
    const std::string mem_path = arg(argc, argv, "mem", nullptr);
    const std::string out_path = arg(argc, argv, "out", nullptr);
    const std::string timing_path = arg(argc, argv, "timing", nullptr);
    const long images = std::atol(arg(argc, argv, "images", nullptr));
    const uint64_t img_base = std::strtoull(arg(argc, argv, "img_base", nullptr), nullptr, 10);
    const uint64_t img_stride = std::strtoull(arg(argc, argv, "img_stride", nullptr), nullptr, 10);
    const long img_words = std::atol(arg(argc, argv, "img_words", nullptr));
    const uint64_t wbase = std::strtoull(arg(argc, argv, "wbase", nullptr), nullptr, 10);
    const uint64_t wbeats = std::strtoull(arg(argc, argv, "wbeats", nullptr), nullptr, 10);
    const uint64_t pbase = std::strtoull(arg(argc, argv, "pbase", nullptr), nullptr, 10);
    const uint64_t pbeats = std::strtoull(arg(argc, argv, "pbeats", nullptr), nullptr, 10);
    const int h = std::atoi(arg(argc, argv, "h", nullptr));
    const int act = std::atoi(arg(argc, argv, "act", nullptr));
    const long k = std::atol(arg(argc, argv, "k", nullptr));
    const int pbytes = std::atoi(arg(argc, argv, "pbytes", nullptr));
    const int tw = std::atoi(arg(argc, argv, "tw", nullptr));
    const unsigned burst = (unsigned)std::atoi(arg(argc, argv, "burst", nullptr));
    const long latency = std::atol(arg(argc, argv, "latency", "1"));
    const long jitter = std::atol(arg(argc, argv, "jitter", "0"));
    const double mem_stall = std::atof(arg(argc, argv, "mem_stall", "0"));
    const double out_stall = std::atof(arg(argc, argv, "out_stall", "0"));
    const long long slverr_beat = std::atoll(arg(argc, argv, "slverr_beat", "-1"));
    const long comb_check = std::atol(arg(argc, argv, "comb_check", "0"));
    std::mt19937 rng(std::atoi(arg(argc, argv, "seed", "1")));
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    std::uniform_int_distribution<long> jit(0, jitter < 0 ? 0 : jitter);
    if (images < 1 || k < 1 || latency < 1 || jitter < 0 || pbytes < 1 || pbytes > 128 || tw < 1 ||
        tw > 128 || burst < 1 || burst > 256 || img_words < 1 || out_stall < 0 || out_stall >= 1 ||
        mem_stall < 0 || mem_stall >= 1 || comb_check < 0) {
        std::fprintf(stderr, "tb_simd: need images, k, latency, pbytes, tw, img_words >= 1, "
                             "burst in 1..256, jitter >= 0 and stalls in [0, 1)\n");
        return 2;
    }

    std::vector<uint8_t> mem;
    {
        std::FILE *f = std::fopen(mem_path.c_str(), "rb");
        if (!f) {
            std::fprintf(stderr, "tb_simd: cannot read %s\n", mem_path.c_str());
            return 2;
        }
        int c;
        while ((c = std::fgetc(f)) != EOF) mem.push_back((uint8_t)c);
        std::fclose(f);
    }
    auto words_at = [&](uint64_t a, int n, uint32_t *w) {
        std::memset(w, 0, 64 * sizeof(uint32_t));
        for (int b = 0; b < n; ++b) w[b / 4] |= (uint32_t)mem[a + b] << (8 * (b % 4));
    };

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vsimd_axi>(ctx.get());

    // ---- the state every clock services
    uint64_t cycle = 0;
    std::deque<Burst> bursts;
    uint64_t last_due = 0;
    unsigned beat_in_burst = 0;
    bool r_presenting = false;
    long long beat_count = 0;
    uint64_t n_bursts = 0, n_beats = 0, page_cuts = 0;
    unsigned max_len = 0;
    // image stream and logits
    long cur_img = -1, words_sent = 0;
    bool img_holding = false;
    std::vector<int8_t> out;
    long got = 0;
    // AXI-Lite: at most one write or read in progress
    int lw_state = 0;          // 0 idle, 1 address and data offered, 2 waiting for B
    bool aw_done = false, w_done = false;
    unsigned lw_addr = 0, lw_data = 0;
    int lr_state = 0;          // 0 idle, 1 address offered, 2 waiting for R
    unsigned lr_addr = 0, lr_data = 0;

    // every output port, as numbers (none is wider than 32 bits)
    auto outputs = [&]() {
        return std::vector<uint64_t>{
            top->s_axil_awready, top->s_axil_wready, top->s_axil_bresp, top->s_axil_bvalid,
            top->s_axil_arready, top->s_axil_rdata, top->s_axil_rresp, top->s_axil_rvalid,
            (uint64_t)top->m_axi_araddr, top->m_axi_arlen, top->m_axi_arsize, top->m_axi_arburst,
            top->m_axi_arvalid, top->m_axi_rready, top->s_axis_img_tready, top->m_axis_out_tdata,
            top->m_axis_out_tvalid, top->m_axis_out_tlast, top->irq};
    };
    // invert every input port but the clock (twice restores it)
    auto flip_inputs = [&]() {
        top->rst ^= 1;
        top->s_axil_awaddr ^= 0x3F; top->s_axil_awvalid ^= 1; top->s_axil_wdata ^= 0xFFFFFFFFu;
        top->s_axil_wstrb ^= 0xF; top->s_axil_wvalid ^= 1; top->s_axil_bready ^= 1;
        top->s_axil_araddr ^= 0x3F; top->s_axil_arvalid ^= 1; top->s_axil_rready ^= 1;
        top->m_axi_arready ^= 1; top->m_axi_rresp ^= 3; top->m_axi_rlast ^= 1;
        top->m_axi_rvalid ^= 1; top->s_axis_img_tvalid ^= 1; top->s_axis_img_tlast ^= 1;
        top->m_axis_out_tready ^= 1;
        uint32_t w[64];
        for (int i = 0; i < 64; ++i) w[i] = 0xFFFFFFFFu;
        // the wide data inputs: XOR with all ones, word by word, through a read-back
        auto flip_wide = [&](auto &port, int bytes) {
            uint32_t cur[64] = {0};
            get(port, cur);
            for (int i = 0; i < (bytes + 3) / 4; ++i) cur[i] ^= w[i];
            if (bytes % 4) cur[(bytes + 3) / 4 - 1] &= (1u << (8 * (bytes % 4))) - 1;
            put(port, cur);
        };
        flip_wide(top->m_axi_rdata, pbytes);
        flip_wide(top->s_axis_img_tdata, tw);
    };

    auto tick = [&]() {
        top->clk = 0;
        // memory: AR ready, R beat
        top->m_axi_arready = !(mem_stall > 0 && uni(rng) < mem_stall);
        if (!r_presenting && !bursts.empty() && bursts.front().due <= cycle &&
            !(mem_stall > 0 && uni(rng) < mem_stall))
            r_presenting = true;
        if (r_presenting) {
            const Burst &b = bursts.front();
            uint32_t w[64];
            words_at(b.addr + (uint64_t)beat_in_burst * pbytes, pbytes, w);
            put(top->m_axi_rdata, w);
            top->m_axi_rresp = (beat_count == slverr_beat) ? 2 : 0;
            top->m_axi_rlast = (beat_in_burst + 1 == b.len);
        }
        top->m_axi_rvalid = r_presenting;
        // image stream
        if (cur_img >= 0 && words_sent < img_words && !img_holding)
            img_holding = !(out_stall > 0 && uni(rng) < out_stall);
        if (img_holding) {
            uint32_t w[64];
            words_at((img_base + (uint64_t)cur_img * img_stride) * pbytes +
                         (uint64_t)words_sent * tw, tw, w);
            put(top->s_axis_img_tdata, w);
            top->s_axis_img_tlast = (words_sent + 1 == img_words);
        }
        top->s_axis_img_tvalid = img_holding;
        top->m_axis_out_tready = !(out_stall > 0 && uni(rng) < out_stall);
        // AXI-Lite
        top->s_axil_awvalid = lw_state == 1 && !aw_done;
        top->s_axil_awaddr = lw_addr;
        top->s_axil_wvalid = lw_state == 1 && !w_done;
        top->s_axil_wdata = lw_data;
        top->s_axil_wstrb = 0xF;
        top->s_axil_bready = lw_state == 2;
        top->s_axil_arvalid = lr_state == 1;
        top->s_axil_araddr = lr_addr;
        top->s_axil_rready = lr_state == 2;
        top->eval();
        if (comb_check > 0 && cycle % (uint64_t)comb_check == 0) {
            const std::vector<uint64_t> before = outputs();
            flip_inputs();
            top->eval();
            const std::vector<uint64_t> after = outputs();
            flip_inputs();
            top->eval();
            for (size_t i = 0; i < before.size(); ++i)
                if (before[i] != after[i]) {
                    char msg[120];
                    std::snprintf(msg, sizeof msg, "output port %zu (in the order of outputs()) "
                                  "changed with the inputs between clock edges", i);
                    fail(1, msg, cycle);
                }
        }

        // handshakes, sampled before the edge (none while reset is held: the outputs may
        // show their power-up values until the first edge)
        const bool live = !top->rst;
        if (live && top->m_axi_arvalid && top->m_axi_arready) {
            const uint64_t a = top->m_axi_araddr;
            const unsigned len = (unsigned)top->m_axi_arlen + 1;
            char msg[200];
            if (top->m_axi_arburst != 1 || (1u << top->m_axi_arsize) != (unsigned)pbytes ||
                a % pbytes) {
                std::snprintf(msg, sizeof msg, "AR at 0x%llx: burst type %d, size %d (need INCR, "
                              "%d-byte aligned beats)", (unsigned long long)a,
                              (int)top->m_axi_arburst, (int)top->m_axi_arsize, pbytes);
                fail(1, msg, cycle);
            }
            if (len > burst) {
                std::snprintf(msg, sizeof msg, "AR at 0x%llx: %u beats, longer than the burst "
                              "length %u", (unsigned long long)a, len, burst);
                fail(1, msg, cycle);
            }
            if ((a & 4095) + (uint64_t)len * pbytes > 4096) {
                std::snprintf(msg, sizeof msg, "AR at 0x%llx: %u beats of %d bytes cross a 4 KB "
                              "boundary", (unsigned long long)a, len, pbytes);
                fail(1, msg, cycle);
            }
            if (a + (uint64_t)len * pbytes > mem.size()) {
                std::snprintf(msg, sizeof msg, "AR at 0x%llx: %u beats outside the memory",
                              (unsigned long long)a, len);
                fail(1, msg, cycle);
            }
            const uint64_t due = std::max(last_due, cycle + (uint64_t)latency + (uint64_t)jit(rng));
            last_due = due;
            bursts.push_back({a, len, due});
            ++n_bursts;
            n_beats += len;
            max_len = std::max(max_len, len);
            if (len < burst && ((a + (uint64_t)len * pbytes) & 4095) == 0) ++page_cuts;
        }
        const bool r_beat = live && r_presenting && top->m_axi_rready;
        const bool img_take = live && img_holding && top->s_axis_img_tready;
        const bool out_take = live && top->m_axis_out_tvalid && top->m_axis_out_tready;
        const int8_t logit = (int8_t)top->m_axis_out_tdata;
        const bool out_last = top->m_axis_out_tlast;
        const bool aw_take = live && top->s_axil_awvalid && top->s_axil_awready;
        const bool w_take = live && top->s_axil_wvalid && top->s_axil_wready;
        const bool b_take = live && top->s_axil_bvalid && top->s_axil_bready;
        const bool ar_take = live && top->s_axil_arvalid && top->s_axil_arready;
        const bool rl_take = live && top->s_axil_rvalid && top->s_axil_rready;
        const unsigned rl_data = top->s_axil_rdata;
        top->clk = 1;
        top->eval();
        ++cycle;

        if (r_beat) {
            ++beat_count;
            r_presenting = false;
            if (++beat_in_burst == bursts.front().len) {
                beat_in_burst = 0;
                bursts.pop_front();
            }
        }
        if (img_take) {
            ++words_sent;
            img_holding = false;
        }
        if (out_take) {
            out.push_back(logit);
            ++got;
            if (out_last != (got == k)) {
                char msg[120];
                std::snprintf(msg, sizeof msg, "TLAST %d on logit %ld of image %ld", (int)out_last,
                              got - 1, cur_img);
                fail(1, msg, cycle);
            }
        }
        if (lw_state == 1) {
            aw_done = aw_done || aw_take;
            w_done = w_done || w_take;
            if (aw_done && w_done) lw_state = 2;
        } else if (lw_state == 2 && b_take) {
            lw_state = 0;
        }
        if (lr_state == 1 && ar_take) lr_state = 2;
        else if (lr_state == 2 && rl_take) {
            lr_data = rl_data;
            lr_state = 0;
        }
    };
    auto lite_write = [&](unsigned a, unsigned d) {
        lw_addr = a;
        lw_data = d;
        aw_done = w_done = false;
        lw_state = 1;
        while (lw_state) tick();
    };
    auto lite_read = [&](unsigned a) -> unsigned {
        lr_addr = a;
        lr_state = 1;
        while (lr_state) tick();
        return lr_data;
    };

    top->clk = 0;
    top->rst = 1;
    for (int i = 0; i < 4; ++i) tick();
    top->rst = 0;

    const unsigned info = lite_read(0x20);
    if ((info & 0xFF) != (unsigned)(tw & 0xFF) || ((info >> 8) & 0xFF) != (unsigned)(pbytes & 0xFF) ||
        ((info >> 16) & 0xFF) + 1 != burst) {
        std::fprintf(stderr, "tb_simd: INFO 0x%08x does not match tw=%d pbytes=%d burst=%u\n",
                     info, tw, pbytes, burst);
        return 2;
    }
    lite_write(0x08, (unsigned)h | ((unsigned)act << 16));
    lite_write(0x0C, (unsigned)(wbase * pbytes));
    lite_write(0x10, (unsigned)(wbeats * pbytes));
    lite_write(0x14, (unsigned)(pbase * pbytes));
    lite_write(0x18, (unsigned)(pbeats * pbytes));

    std::vector<uint64_t> t_start(images, 0), t_done(images, 0);
    for (long img = 0; img < images; ++img) {
        got = 0;
        words_sent = 0;
        cur_img = img;
        const uint64_t deadline = cycle + 10000000ULL;
        lite_write(0x00, 1);
        while (got < k) {
            tick();
            if (cycle > deadline) {
                char msg[120];
                std::snprintf(msg, sizeof msg, "image %ld not done after 10000000 clocks "
                              "(%ld logits)", img, got);
                fail(1, msg, cycle);
            }
        }
        cur_img = -1;
        unsigned status;
        while (!((status = lite_read(0x04)) & 1u))
            if (cycle > deadline) fail(1, "STATUS.DONE never rose", cycle);
        const unsigned cycles = lite_read(0x1C);
        if (status & 0x3Cu) {
            std::fprintf(stderr, "tb_simd: STATUS 0x%02x after image %ld:%s%s%s%s\n", status, img,
                         (status & 4) ? " ERR_CFG" : "", (status & 8) ? " ERR_RESP" : "",
                         (status & 16) ? " ERR_RLAST" : "", (status & 32) ? " ERR_IMG" : "");
            return 3;
        }
        if (words_sent != img_words) fail(1, "the image was not taken whole", cycle);
        t_done[img] = cycle;
        t_start[img] = cycle - cycles;
        std::printf("image %ld %u\n", img, cycles);
        std::fflush(stdout);
    }
    top->final();

    std::FILE *f = std::fopen(out_path.c_str(), "wb");
    if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) {
        std::fprintf(stderr, "tb_simd: cannot write %s\n", out_path.c_str());
        return 2;
    }
    std::fclose(f);
    f = std::fopen(timing_path.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "tb_simd: cannot write %s\n", timing_path.c_str());
        return 2;
    }
    for (long i = 0; i < images; ++i)
        std::fprintf(f, "%llu %llu\n", (unsigned long long)t_start[i], (unsigned long long)t_done[i]);
    std::fclose(f);
    std::printf("cycles=%llu images=%ld\n", (unsigned long long)cycle, images);
    std::printf("bursts=%llu beats=%llu max_len=%u page_cuts=%llu\n", (unsigned long long)n_bursts,
                (unsigned long long)n_beats, max_len, (unsigned long long)page_cuts);
    return 0;
}
