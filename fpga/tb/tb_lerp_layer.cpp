// Verilator testbench for lerp_layer: streams 8-bit codes from a hex file,
// collects the results in order and writes them to a hex file (same format).
//
//   Vlerp_layer +tables=TABLES.hex INPUTS.hex OUTPUTS.hex [BUBBLE_PERCENT [SEED]]
//
// +tables= names the table file, read by the RTL's $readmemh at run time
// (plusargs may stand anywhere among the arguments).
//
// BUBBLE_PERCENT > 0 drops in_valid on that share of cycles (random, seeded)
// to check that bubbles keep the feature order. Prints one summary line:
//   cycles=C elements=N elements_per_cycle=X latency=L
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vlerp_layer.h"
#include "verilated.h"

static std::vector<int> read_hex(const char *path) {
    std::ifstream in(path);
    if (!in) {
        std::cerr << "tb_lerp_layer: cannot read " << path << "\n";
        std::exit(2);
    }
    std::vector<int> v;
    std::string word;
    while (in >> word) v.push_back(static_cast<int>(std::stoul(word, nullptr, 16) & 0xFF));
    return v;
}

int main(int argc_all, char **argv_all) {
    // Positional arguments are the ones that are not plusargs.
    std::vector<char *> pos;
    for (int i = 0; i < argc_all; ++i)
        if (i == 0 || argv_all[i][0] != '+') pos.push_back(argv_all[i]);
    const int argc = static_cast<int>(pos.size());
    char **argv = pos.data();
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " INPUTS.hex OUTPUTS.hex [BUBBLE_PERCENT [SEED]]\n";
        return 2;
    }
    const std::vector<int> inputs = read_hex(argv[1]);
    const int bubble = argc > 3 ? std::atoi(argv[3]) : 0;
    std::mt19937 rng(argc > 4 ? std::atoi(argv[4]) : 1);

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc_all, argv_all);  // +tables= reaches $value$plusargs
    auto top = std::make_unique<Vlerp_layer>(ctx.get());
    auto tick = [&]() {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    };
    top->rst = 1;
    top->in_valid = 0;
    top->in_x = 0;
    tick();
    tick();
    top->rst = 0;

    std::vector<int> outputs;
    outputs.reserve(inputs.size());
    size_t next = 0;
    uint64_t cycles = 0, first_out = 0;
    const uint64_t limit = inputs.size() * 100 + 1000;
    while (outputs.size() < inputs.size() && cycles < limit) {
        bool send = next < inputs.size() && (bubble <= 0 || (int)(rng() % 100) >= bubble);
        top->in_valid = send ? 1 : 0;
        top->in_x = send ? static_cast<uint8_t>(inputs[next]) : 0;
        if (send) ++next;
        tick();
        ++cycles;
        if (top->out_valid) {
            if (outputs.empty()) first_out = cycles;
            outputs.push_back(top->out_y & 0xFF);
        }
    }
    top->final();
    if (outputs.size() != inputs.size()) {
        std::cerr << "tb_lerp_layer: got " << outputs.size() << " of " << inputs.size()
                  << " results after " << cycles << " cycles\n";
        return 1;
    }
    std::FILE *out = std::fopen(argv[2], "w");
    if (!out) {
        std::cerr << "tb_lerp_layer: cannot write " << argv[2] << "\n";
        return 2;
    }
    for (int y : outputs) std::fprintf(out, "%02x\n", y);
    std::fclose(out);
    std::printf("cycles=%llu elements=%zu elements_per_cycle=%.4f latency=%llu\n",
                (unsigned long long)cycles, outputs.size(),
                cycles ? (double)outputs.size() / (double)cycles : 0.0,
                (unsigned long long)first_out);
    return 0;
}
