// stage_harness: every stage module of the INT8 ResMLP pipeline side by
// side, each on its own pair of valid/ready streams, so that one Verilator
// build checks them all against their integer primitives (driven by
// tb_stages.cpp, checked by tests/test_rtl_stages.py). Small sizes keep the
// build quick; the widths that depend on the sizes are exercised by the
// whole pipeline (tests/test_rtl_resmlp.py). The streams use different
// pipeline depths (LPS 1, 2, 3 adder levels per stage).
//
// Stream k (k = 0 .. N-1), parameter files named after the NAMEs below in
// the +hexdir= folder; ROWS rows per image for the end-of-image markers:
//   0  row_linear  I = 96, O = 20, no activation, LPS 1, ROWS 5   "lin"
//   1  row_linear  I = 8,  O = 12, relu8, ROWS 4                  "linr"
//   2  row_linear  I = 8,  O = 6,  LERP tables, ROWS 6            "linl", tables "linl.lut"
//   3  ew_stage    affine, F = 7, ROWS 4                          "aff"
//   4  ew_stage    LERP,   F = 5, ROWS 8                          "lut"
//   5  token_mixer T = 8,  C = 6, LPS 3                           "tm"
//   6  channel_mlp T = 8, C = 6, H = 10, ReLU                     "mlpr"
//   7  channel_mlp T = 8, C = 6, H = 4,  LERP-PSA                 "mlpl"
//   8  mean_pool   T = 8,  C = 6                                  (no parameters)
//   9  channel_mlp T = 8, C = 6, H = 12, ReLU, 2 lanes            "mlp2r"
//  10  channel_mlp T = 8, C = 6, H = 8,  LERP-PSA, 2 lanes        "mlp2l"
//  11  row_linear  I = 96, O = 10, folded on 8 multipliers, ROWS 1 "head"
//  12  row_linear  I = 12, O = 6, LERP tables, folded on 4, ROWS 2 "linf", tables "linf.lut"
//
// Ports: the streams' signals side by side, bit k (or byte k) for stream k.
//   clk, rst                              clock, synchronous active-high reset
//   in_valid[k], in_ready[k], in_data[k], in_last[k]      input stream k
//   out_valid[k], out_ready[k], out_data[k], out_last[k]  output stream k
//   err[k]                                stream k's stage raised its error flag

`default_nettype none

module stage_harness #(
    parameter integer M = 6     // LERP table address bits
) (
    input  wire          clk,
    input  wire          rst,
    input  wire [12:0]   in_valid,
    output wire [12:0]   in_ready,
    input  wire [103:0]  in_data,
    input  wire [12:0]   in_last,
    output wire [12:0]   out_valid,
    input  wire [12:0]   out_ready,
    output wire [103:0]  out_data,
    output wire [12:0]   out_last,
    output wire [12:0]   err
);
`define STREAM(k) .clk(clk), .rst(rst), \
        .in_valid(in_valid[k]), .in_ready(in_ready[k]), .in_data(in_data[8*(k) +: 8]), \
        .in_last(in_last[k]), .out_valid(out_valid[k]), .out_ready(out_ready[k]), \
        .out_data(out_data[8*(k) +: 8]), .out_last(out_last[k]), .err(err[k])
    row_linear #(.I(96), .O(20), .ROWS(5), .ACT(0), .M(M), .LPS(1), .NAME("lin")) stage0 (`STREAM(0));
    row_linear #(.I(8), .O(12), .ROWS(4), .ACT(1), .M(M), .NAME("linr")) stage1 (`STREAM(1));
    row_linear #(.I(8), .O(6), .ROWS(6), .ACT(2), .M(M), .NAME("linl"), .LUT_NAME("linl.lut"))
        stage2 (`STREAM(2));
    ew_stage #(.F(7), .ROWS(4), .MODE(1), .M(M), .NAME("aff")) stage3 (`STREAM(3));
    ew_stage #(.F(5), .ROWS(8), .MODE(2), .M(M), .NAME("lut")) stage4 (`STREAM(4));
    token_mixer #(.T(8), .C(6), .LPS(3), .NAME("tm")) stage5 (`STREAM(5));
    channel_mlp #(.T(8), .C(6), .H(10), .ACT(0), .M(M), .NAME("mlpr"), .RAW(6)) stage6 (`STREAM(6));
    channel_mlp #(.T(8), .C(6), .H(4), .ACT(1), .M(M), .NAME("mlpl"), .RAW(6)) stage7 (`STREAM(7));
    mean_pool #(.T(8), .C(6)) stage8 (`STREAM(8));
    channel_mlp #(.T(8), .C(6), .H(12), .LANES(2), .ACT(0), .M(M), .NAME("mlp2r"), .RAW(6))
        stage9 (`STREAM(9));
    channel_mlp #(.T(8), .C(6), .H(8), .LANES(2), .ACT(1), .M(M), .NAME("mlp2l"), .RAW(6))
        stage10 (`STREAM(10));
    row_linear #(.I(96), .O(10), .FOLD(12), .ROWS(1), .ACT(0), .M(M), .NAME("head"))
        stage11 (`STREAM(11));
    row_linear #(.I(12), .O(6), .FOLD(3), .ROWS(2), .ACT(2), .M(M), .NAME("linf"),
                 .LUT_NAME("linf.lut")) stage12 (`STREAM(12));
`undef STREAM
endmodule

`default_nettype wire
