// simd_array: the compute core of the fixed-SIMD engine, TW lanes of TW
// int8 multipliers (TW x TW in all) with int32 accumulators.
//
// Each lane j holds a stationary vector S[j] (TW signed bytes) and, on
// every clock that carries a row, adds the dot product of S[j] with the
// row's vector v (TW signed bytes, the same for all lanes) to its
// accumulator of that row:
//
//   acc[row][j] = (first ? 0 : acc[row][j]) + sum_i S[j][i] * v[i]
//
// and on a row marked last hands acc[row] on (TW x 32 bits). The engine
// uses it two ways: weights stationary (S[j] = TW weights of output j, v =
// TW activations of one token: a channel Linear) and data stationary (S[j]
// = TW tokens of channel j, v = TW weights of one output token: the token
// Linear). The accumulators of all rows live in a RAM of ROWS words, read
// and written back once per row; a row may come back after at least 4
// clocks.
//
// Stationary double buffer: a shadow tile is written word by word (ld_*)
// while the current tile works; swap copies it to the working registers at
// the clock edge where it is given, i.e. one clock before the first row
// that must use it reaches the array (rows already inside the array keep
// the old tile). Word i of a load goes to lane i (ld_tr = 0) or, byte j to
// lane j at position i (ld_tr = 1: a transposing load of a data tile).
//
// Pipeline: the multiplies and the adder tree (dot_tree, 1 + ceil(log2 TW /
// LPS) clocks), then the accumulate (1 clock): latency 2 + ceil(log2 TW /
// LPS) from in_* to out_*.
//
// Parameters
//   TW    tile width, >= 2 (lanes and products per lane)
//   ROWS  accumulator rows, >= 1
//   LPS   adder levels per pipeline stage of the dot products, >= 1
//   SW    side-band width, >= 1
//
// Ports
//   clk, rst                 clock; synchronous active-high reset (valid pipe)
//   ld_valid, ld_i, ld_tr, ld_word   write word ld_i of the shadow tile
//   swap                     the shadow tile becomes the working tile at this edge
//   in_valid, in_vec         a row's vector
//   in_row                   its accumulator row, 0..ROWS-1
//   in_first, in_last        the first / last contribution to that row
//   in_side                  carried along
//   out_valid, out_acc, out_row, out_side   a completed row (lane j in bits [32j +: 32])

`default_nettype none

module simd_array #(
    parameter integer TW   = 16,
    parameter integer ROWS = 96,
    parameter integer LPS  = 2,
    parameter integer SW   = 1
) (
    input  wire                               clk,
    input  wire                               rst,
    input  wire                               ld_valid,
    input  wire [$clog2(TW)-1:0]              ld_i,
    input  wire                               ld_tr,
    input  wire [TW*8-1:0]                    ld_word,
    input  wire                               swap,
    input  wire                               in_valid,
    input  wire [TW*8-1:0]                    in_vec,
    input  wire [((ROWS > 1) ? $clog2(ROWS) : 1)-1:0] in_row,
    input  wire                               in_first,
    input  wire                               in_last,
    input  wire [SW-1:0]                      in_side,
    output wire                               out_valid,
    output wire [TW*32-1:0]                   out_acc,
    output wire [((ROWS > 1) ? $clog2(ROWS) : 1)-1:0] out_row,
    output wire [SW-1:0]                      out_side
);
    localparam integer IW   = $clog2(TW);
    localparam integer RW   = (ROWS > 1) ? $clog2(ROWS) : 1;
    localparam integer SUMW = 16 + IW;
    localparam integer LATD = 1 + (IW + LPS - 1) / LPS;     // dot_tree latency

    // ---- stationary tiles: lane j's vector in bits [j*TW*8 +: TW*8] ----
    reg [TW*TW*8-1:0] s_sh, s_act;
    integer j;
    always @(posedge clk) begin
        if (ld_valid) begin
            for (j = 0; j < TW; j = j + 1) begin
                if (ld_tr) s_sh[j*TW*8 + ld_i*8 +: 8] <= ld_word[j*8 +: 8];
                else if (ld_i == j[IW-1:0]) s_sh[j*TW*8 +: TW*8] <= ld_word;
            end
        end
        if (swap) s_act <= s_sh;
    end

    // ---- TW dot products; lane 0 carries the control side band ----
    wire [TW-1:0]        dv;
    wire [TW*SUMW-1:0]   sums;
    wire [RW+SW+1:0]     dside;
    genvar g;
    generate
        for (g = 0; g < TW; g = g + 1) begin : lane
            if (g == 0) begin : g_ctl
                dot_tree #(.N(TW), .LPS(LPS), .SW(RW + SW + 2)) dot (
                    .clk(clk), .rst(rst), .in_valid(in_valid), .in_a(s_act[g*TW*8 +: TW*8]),
                    .in_b(in_vec), .in_side({in_row, in_side, in_first, in_last}),
                    .out_valid(dv[g]), .out_sum(sums[g*SUMW +: SUMW]), .out_side(dside));
            end else begin : g_data
                wire unused_side;
                dot_tree #(.N(TW), .LPS(LPS), .SW(1)) dot (
                    .clk(clk), .rst(rst), .in_valid(in_valid), .in_a(s_act[g*TW*8 +: TW*8]),
                    .in_b(in_vec), .in_side(1'b0),
                    .out_valid(dv[g]), .out_sum(sums[g*SUMW +: SUMW]), .out_side(unused_side));
            end
        end
    endgenerate
    wire unused_dv = &{1'b0, dv[TW-1:1]};

    // ---- accumulators: read one clock before the sums arrive, add, write back ----
    wire [RW-1:0] row_early;
    pipe_delay #(.W(RW), .D(LATD - 1), .RST(0)) drow (.clk(clk), .rst(rst), .d(in_row), .q(row_early));
    reg [TW*32-1:0] am [0:ROWS-1];
    reg [TW*32-1:0] am_rd;
    always @(posedge clk) am_rd <= am[row_early];

    wire [RW-1:0] d_row   = dside[RW+SW+1 -: RW];
    wire          d_first = dside[1];
    wire          d_last  = dside[0];
    reg [TW*32-1:0] acc;
    reg [RW-1:0]    a_row;
    reg [SW-1:0]    a_side;
    reg             a_valid, a_last;
    integer l;
    always @(posedge clk) begin
        for (l = 0; l < TW; l = l + 1)
            acc[l*32 +: 32] <= (d_first ? 32'sd0 : $signed(am_rd[l*32 +: 32]))
                               + {{(32-SUMW){sums[l*SUMW+SUMW-1]}}, sums[l*SUMW +: SUMW]};
        a_row   <= d_row;
        a_side  <= dside[SW+1:2];
        a_last  <= d_last;
        a_valid <= rst ? 1'b0 : dv[0];
    end
    always @(posedge clk) if (a_valid) am[a_row] <= acc;

    assign out_valid = a_valid && a_last;
    assign out_acc   = acc;
    assign out_row   = a_row;
    assign out_side  = a_side;
endmodule

`default_nettype wire
