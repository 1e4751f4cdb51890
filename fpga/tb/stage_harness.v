// stage_harness: every stage module of the INT8 ResMLP pipeline side by
// side, each on its own pair of valid/ready streams, so that one Verilator
// build checks them all against their integer primitives (driven by
// tb_stages.cpp, checked by tests/test_rtl_stages.py). Small sizes keep the
// build quick; the widths that depend on the sizes are exercised by the
// whole pipeline (tests/test_rtl_resmlp.py).
//
// Stream k (k = 0 .. N-1), parameter files named after the NAMEs below in
// the +hexdir= folder:
//   0  row_linear  I = 96, O = 20, no activation      "lin"
//   1  row_linear  I = 8,  O = 12, relu8              "linr"
//   2  row_linear  I = 8,  O = 6,  LERP tables        "linl", tables "linl.lut"
//   3  ew_stage    affine, F = 7                      "aff"
//   4  ew_stage    LERP,   F = 5                      "lut"
//   5  token_mixer T = 8,  C = 6                      "tm"
//   6  channel_mlp C = 6,  H = 10, ReLU               "mlpr"
//   7  channel_mlp C = 6,  H = 4,  LERP-PSA           "mlpl"
//   8  mean_pool   T = 8,  C = 6                      (no parameters)
//
// Ports: the streams' signals side by side, bit k (or byte k) for stream k.
//   clk, rst                              clock, synchronous active-high reset
//   in_valid[k], in_ready[k], in_data[k]  input stream k
//   out_valid[k], out_ready[k], out_data[k] output stream k

`default_nettype none

module stage_harness #(
    parameter integer M = 6     // LERP table address bits
) (
    input  wire          clk,
    input  wire          rst,
    input  wire [8:0]    in_valid,
    output wire [8:0]    in_ready,
    input  wire [71:0]   in_data,
    output wire [8:0]    out_valid,
    input  wire [8:0]    out_ready,
    output wire [71:0]   out_data
);
    row_linear #(.I(96), .O(20), .ACT(0), .M(M), .NAME("lin")) stage0 (
        .clk(clk), .rst(rst), .in_valid(in_valid[0]), .in_ready(in_ready[0]), .in_data(in_data[7:0]),
        .out_valid(out_valid[0]), .out_ready(out_ready[0]), .out_data(out_data[7:0]));
    row_linear #(.I(8), .O(12), .ACT(1), .M(M), .NAME("linr")) stage1 (
        .clk(clk), .rst(rst), .in_valid(in_valid[1]), .in_ready(in_ready[1]), .in_data(in_data[15:8]),
        .out_valid(out_valid[1]), .out_ready(out_ready[1]), .out_data(out_data[15:8]));
    row_linear #(.I(8), .O(6), .ACT(2), .M(M), .NAME("linl"), .LUT_NAME("linl.lut")) stage2 (
        .clk(clk), .rst(rst), .in_valid(in_valid[2]), .in_ready(in_ready[2]), .in_data(in_data[23:16]),
        .out_valid(out_valid[2]), .out_ready(out_ready[2]), .out_data(out_data[23:16]));
    ew_stage #(.F(7), .MODE(1), .M(M), .NAME("aff")) stage3 (
        .clk(clk), .rst(rst), .in_valid(in_valid[3]), .in_ready(in_ready[3]), .in_data(in_data[31:24]),
        .out_valid(out_valid[3]), .out_ready(out_ready[3]), .out_data(out_data[31:24]));
    ew_stage #(.F(5), .MODE(2), .M(M), .NAME("lut")) stage4 (
        .clk(clk), .rst(rst), .in_valid(in_valid[4]), .in_ready(in_ready[4]), .in_data(in_data[39:32]),
        .out_valid(out_valid[4]), .out_ready(out_ready[4]), .out_data(out_data[39:32]));
    token_mixer #(.T(8), .C(6), .NAME("tm")) stage5 (
        .clk(clk), .rst(rst), .in_valid(in_valid[5]), .in_ready(in_ready[5]), .in_data(in_data[47:40]),
        .out_valid(out_valid[5]), .out_ready(out_ready[5]), .out_data(out_data[47:40]));
    channel_mlp #(.C(6), .H(10), .ACT(0), .M(M), .NAME("mlpr"), .RAW(6)) stage6 (
        .clk(clk), .rst(rst), .in_valid(in_valid[6]), .in_ready(in_ready[6]), .in_data(in_data[55:48]),
        .out_valid(out_valid[6]), .out_ready(out_ready[6]), .out_data(out_data[55:48]));
    channel_mlp #(.C(6), .H(4), .ACT(1), .M(M), .NAME("mlpl"), .RAW(6)) stage7 (
        .clk(clk), .rst(rst), .in_valid(in_valid[7]), .in_ready(in_ready[7]), .in_data(in_data[63:56]),
        .out_valid(out_valid[7]), .out_ready(out_ready[7]), .out_data(out_data[63:56]));
    mean_pool #(.T(8), .C(6)) stage8 (
        .clk(clk), .rst(rst), .in_valid(in_valid[8]), .in_ready(in_ready[8]), .in_data(in_data[71:64]),
        .out_valid(out_valid[8]), .out_ready(out_ready[8]), .out_data(out_data[71:64]));
endmodule

`default_nettype wire
