// resmlp_axis: the streaming INT8 ResMLP accelerator (resmlp_top) with
// AXI4-Stream ports: images in as a stream of signed 8-bit patch codes
// (token rows in order, TLAST on the last code of each image), logits out
// (K signed bytes per image, class order, TLAST on the last of each image).
// Both streams pass through a registered slice (axis_skid), so every output
// port is a register and no combinational path runs from an input port to
// an output port; a slice passes one code per clock, so the initiation
// interval is resmlp_top's, and the latency grows by two clocks (one per
// slice). err is registered too.
//
// Parameters: those of resmlp_top (P, C, H, ACT, M, DEPTH, T, K, LANES,
// HEADMUL, LPS, HEXDIR: see resmlp_top.v).
//
// Ports
//   clk                                          clock of both streams
//   rst                                          synchronous active-high reset (2 clocks)
//   s_axis_tdata, s_axis_tvalid, s_axis_tready, s_axis_tlast   patch codes in (8-bit)
//   m_axis_tdata, m_axis_tvalid, m_axis_tready, m_axis_tlast   logits out (8-bit)
//   err        resmlp_top's sticky per-stage error bits, one clock later

`default_nettype none

module resmlp_axis #(
    parameter integer P       = 16,
    parameter integer C       = 96,
    parameter integer H       = 96,
    parameter integer ACT     = 0,
    parameter integer M       = 6,
    parameter integer DEPTH   = 4,
    parameter integer T       = 64,
    parameter integer K       = 10,
    parameter integer LANES   = 1,
    parameter integer HEADMUL = 8,
    parameter integer LPS     = 2,
    parameter         HEXDIR  = "."
) (
    input  wire               clk,
    input  wire               rst,
    input  wire [7:0]         s_axis_tdata,
    input  wire               s_axis_tvalid,
    output wire               s_axis_tready,
    input  wire               s_axis_tlast,
    output wire [7:0]         m_axis_tdata,
    output wire               m_axis_tvalid,
    input  wire               m_axis_tready,
    output wire               m_axis_tlast,
    output reg  [2*DEPTH+2:0] err
);
    wire       in_valid, in_ready, in_last, out_valid, out_ready, out_last;
    wire [7:0] in_data, out_data;
    wire [2*DEPTH+2:0] top_err;
    axis_skid #(.W(9)) in_slice (
        .clk(clk), .rst(rst), .in_valid(s_axis_tvalid), .in_ready(s_axis_tready),
        .in_data({s_axis_tlast, s_axis_tdata}),
        .out_valid(in_valid), .out_ready(in_ready), .out_data({in_last, in_data}));
    resmlp_top #(.P(P), .C(C), .H(H), .ACT(ACT), .M(M), .DEPTH(DEPTH), .T(T), .K(K),
                 .LANES(LANES), .HEADMUL(HEADMUL), .LPS(LPS), .HEXDIR(HEXDIR)) core (
        .clk(clk), .rst(rst), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
        .in_last(in_last), .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data),
        .out_last(out_last), .err(top_err));
    axis_skid #(.W(9)) out_slice (
        .clk(clk), .rst(rst), .in_valid(out_valid), .in_ready(out_ready),
        .in_data({out_last, out_data}),
        .out_valid(m_axis_tvalid), .out_ready(m_axis_tready),
        .out_data({m_axis_tlast, m_axis_tdata}));
    always @(posedge clk) err <= rst ? {(2*DEPTH+3){1'b0}} : top_err;
endmodule

`default_nettype wire
