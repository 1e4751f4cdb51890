// channel_mlp: the channel-MLP half of one ResMLP block in integers
// (docs/METHOD.md section 10), on a stream of token rows of C channels:
//
//   r = affine(x, res)
//   ACT = 0 (ReLU):      t = linear(relu8(linear(x, lin1)), lin2)
//   ACT = 1 (LERP-PSA):  t = linear(lerp8(linear(lerp8(x, lut1), lin1), lut2), lin2)
//   y = add8(t, r)
//
// The input stream forks into the residual branch (ew_stage, affine, with a
// FIFO deep enough to hold r while the other branch works on the same
// tokens) and the main branch ([lut1 ew_stage], lin1 row_linear with relu8
// or the lut2 tables on its outputs, lin2 row_linear). The join adds the
// two heads element by element and saturates.
//
// Lanes. lin1 makes LANES hidden elements per clock (LANES output lanes,
// LANES x C multipliers) and hands them to lin2 LANES per beat; lin2 makes
// one output per clock. So the block takes max(C, H / LANES) clocks per
// token: LANES = 1 is the authors' structure (H / C times slower when H >
// C), LANES = H / C keeps every stage at the pace of C per token.
//
// End of image: the markers travel with both branches (each stage checks
// its own count) and the join checks that they arrive together.
//
// Parameter files (see fpga/README.md): <NAME>.res.{w,b,s}.hex,
// <NAME>.lin1.{W,b,s}.hex (LANES > 1: <NAME>.lin1.{W,b,s}.x<LANES>.hex),
// <NAME>.lin2.{W,b,s}.hex, and for ACT = 1 <NAME>.lut1.hex (C tables) and
// <NAME>.lut2.hex (H tables).
//
// Parameters
//   T       tokens (rows) per image, >= 1
//   C       channels, >= 2
//   H       hidden width of the MLP, >= 2, a multiple of LANES
//   LANES   output lanes of lin1 (input lanes of lin2), >= 1
//   ACT     0: ReLU, 1: LERP-PSA tables
//   M       table address bits (1..7), 2^M + 1 entries per table
//   LPS     adder levels per pipeline stage of the dot products, >= 1
//   NAME    tensor-name prefix, e.g. "blocks.0.mlp"
//   HEXDIR  hex folder when no +hexdir= plusarg is given (synthesis)
//   RAW     log2 of the residual FIFO depth; must exceed what the main branch
//           holds (about 6 tokens of C elements), else the block deadlocks
//
// Ports (valid/ready streams of signed 8-bit codes, token rows in order)
//   clk, rst   clock and synchronous active-high reset
//   in_valid, in_ready, in_data, in_last       input elements
//   out_valid, out_ready, out_data, out_last   output elements
//   err        sticky: a stage's end-of-image check or FIFO check failed, or
//              the two branches' markers disagreed at the join

`default_nettype none

module channel_mlp #(
    parameter integer T      = 64,
    parameter integer C      = 96,
    parameter integer H      = 96,
    parameter integer LANES  = 1,
    parameter integer ACT    = 0,
    parameter integer M      = 6,
    parameter integer LPS    = 2,
    parameter         NAME   = "blocks.0.mlp",
    parameter         HEXDIR = ".",
    parameter integer RAW    = 10
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              in_valid,
    output wire              in_ready,
    input  wire signed [7:0] in_data,
    input  wire              in_last,
    output wire              out_valid,
    input  wire              out_ready,
    output wire signed [7:0] out_data,
    output wire              out_last,
    output wire              err
);
`ifndef SYNTHESIS
    initial begin
        if ((1 << RAW) < 8 * C || H % LANES != 0) begin
            $display("channel_mlp %0s: residual FIFO 2^%0d too small for C = %0d, or H %% LANES != 0",
                     NAME, RAW, C);
            $finish;
        end
    end
`endif

    // ---- fork: an element enters both branches in the same clock ----
    wire r_ready, m_ready;
    assign in_ready = r_ready && m_ready;
    wire r_valid_in = in_valid && m_ready;
    wire m_valid_in = in_valid && r_ready;

    // ---- residual branch ----
    wire              r_valid, r_pop, r_last, r_err;
    wire signed [7:0] r_data;
    ew_stage #(.F(C), .ROWS(T), .MODE(1), .NAME({NAME, ".res"}), .HEXDIR(HEXDIR), .FAW(RAW)) res (
        .clk(clk), .rst(rst),
        .in_valid(r_valid_in), .in_ready(r_ready), .in_data(in_data), .in_last(in_last),
        .out_valid(r_valid), .out_ready(r_pop), .out_data(r_data), .out_last(r_last), .err(r_err));

    // ---- main branch ----
    wire              l1_valid, l1_ready, l1_last, l1_err;
    wire signed [7:0] l1_data;
    generate
        if (ACT == 1) begin : g_lut1
            ew_stage #(.F(C), .ROWS(T), .MODE(2), .M(M), .NAME({NAME, ".lut1"}), .HEXDIR(HEXDIR))
                lut1 (.clk(clk), .rst(rst),
                      .in_valid(m_valid_in), .in_ready(m_ready), .in_data(in_data), .in_last(in_last),
                      .out_valid(l1_valid), .out_ready(l1_ready), .out_data(l1_data),
                      .out_last(l1_last), .err(l1_err));
        end else begin : g_direct
            assign l1_valid = m_valid_in;
            assign m_ready  = l1_ready;
            assign l1_data  = in_data;
            assign l1_last  = in_last;
            assign l1_err   = 1'b0;
        end
    endgenerate

    wire                 h_valid, h_ready, h_last, h_err;
    wire [LANES*8-1:0]   h_data;
    row_linear #(.I(C), .O(H), .LI(1), .LO(LANES), .ROWS(T), .ACT(ACT == 1 ? 2 : 1), .M(M),
                 .LPS(LPS), .NAME({NAME, ".lin1"}), .LUT_NAME({NAME, ".lut2"}), .HEXDIR(HEXDIR)) lin1 (
        .clk(clk), .rst(rst),
        .in_valid(l1_valid), .in_ready(l1_ready), .in_data(l1_data), .in_last(l1_last),
        .out_valid(h_valid), .out_ready(h_ready), .out_data(h_data), .out_last(h_last), .err(h_err));

    wire              t_valid, t_pop, t_last, t_err;
    wire signed [7:0] t_data;
    row_linear #(.I(H), .O(C), .LI(LANES), .LO(1), .ROWS(T), .ACT(0), .M(M), .LPS(LPS),
                 .NAME({NAME, ".lin2"}), .HEXDIR(HEXDIR)) lin2 (
        .clk(clk), .rst(rst),
        .in_valid(h_valid), .in_ready(h_ready), .in_data(h_data), .in_last(h_last),
        .out_valid(t_valid), .out_ready(t_pop), .out_data(t_data), .out_last(t_last), .err(t_err));

    // ---- join: add8(t, r) ----
    wire signed [8:0] sum = {t_data[7], t_data} + {r_data[7], r_data};
    assign out_valid = t_valid && r_valid;
    assign out_data  = (sum > 9'sd127) ? 8'sd127 : (sum < -9'sd128) ? -8'sd128 : sum[7:0];
    assign out_last  = t_last;
    assign t_pop     = out_valid && out_ready;
    assign r_pop     = out_valid && out_ready;

    reg join_err;
    always @(posedge clk) begin
        if (rst) join_err <= 1'b0;
        else if (out_valid && out_ready && (t_last != r_last)) join_err <= 1'b1;
    end
`ifndef SYNTHESIS
    always @(posedge clk)
        if (!rst && out_valid && out_ready && (t_last != r_last) && !join_err)
            $display("ERROR %m: the branches' end-of-image markers disagree at the join");
`endif
    assign err = r_err | l1_err | h_err | t_err | join_err;
endmodule

`default_nettype wire
