// row_linear: one Linear layer of the INT8 ResMLP applied to a stream of
// rows (docs/METHOD.md section 10):
//
//   y[t, o] = act(clip8(rshift(sum_i x[t, i] * W[o, i], s[o]) + b[o]))
//
// with act the identity (ACT = 0), relu8 (ACT = 1) or the 8-bit LERP of
// per-output tables (ACT = 2, lerp8 through lerp_unit: the LERP-PSA
// sublayer that follows the first Linear of the channel MLP).
//
// Dataflow. The input is an element stream, row by row (I elements per row,
// element i of a row first to last). A collector shifts one row in; when it
// is complete it is handed to the compute register in one clock, and the
// collector takes the next row at once (double-buffered row). The compute
// side produces one output element per clock: it reads row o of the weight
// ROM (all I weights in one word) and forms the whole dot product, fully
// unrolled over the I inputs, then shifts, adds the bias and clips.
// Outputs leave in the same row-by-row order (O elements per row) through a
// FIFO; a credit counter stops issuing when the FIFO and the pipeline would
// overflow, so back-pressure never drops an element.
//
// Pipeline from issue to FIFO: ROM read, dot product, requant (3 clocks),
// plus 4 clocks of lerp_unit for ACT = 2.
//
// Parameter files (in the hex folder, see hex_rom.v and fpga/README.md):
//   <NAME>.W.hex  O lines, line o = W[o, :] as I bytes, W[o, I-1] first
//   <NAME>.b.hex  O lines, one byte each (two's complement)
//   <NAME>.s.hex  O lines, the shift 0..31
//   <LUT_NAME>.hex (ACT = 2) O * (2^M + 1) table entries, output-major
//
// Parameters
//   I         inputs per row (dot-product width), >= 2
//   O         outputs per row, >= 2
//   ACT       0: none, 1: relu8, 2: LERP tables on the outputs
//   M         table address bits for ACT = 2 (1..7)
//   NAME      tensor name, e.g. "blocks.0.mlp.lin1"
//   LUT_NAME  table tensor name for ACT = 2, e.g. "blocks.0.mlp.lut2"
//   HEXDIR    hex folder when no +hexdir= plusarg is given (synthesis)
//   FAW       log2 of the output FIFO depth (>= 4 keeps one output per clock)
//
// Ports (valid/ready streams of signed 8-bit codes; a code moves on a rising
// edge where valid and ready are both high)
//   clk, rst   clock and synchronous active-high reset
//   in_valid, in_ready, in_data     input elements, row by row
//   out_valid, out_ready, out_data  output elements, row by row

`default_nettype none

module row_linear #(
    parameter integer I        = 96,
    parameter integer O        = 96,
    parameter integer ACT      = 0,
    parameter integer M        = 6,
    parameter         NAME     = "embed",
    parameter         LUT_NAME = "lut",
    parameter         HEXDIR   = ".",
    parameter integer FAW      = 4
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              in_valid,
    output wire              in_ready,
    input  wire signed [7:0] in_data,
    output wire              out_valid,
    input  wire              out_ready,
    output wire signed [7:0] out_data
);
    localparam integer OW   = (O > 1) ? $clog2(O) : 1;
    localparam integer CNTW = $clog2(I + 1);
    localparam integer ACCW = 17 + $clog2(I);      // |sum| <= I * 128 * 128

`ifndef SYNTHESIS
    initial begin
        if (I < 2 || O < 2 || ACT < 0 || ACT > 2) begin
            $display("row_linear %0s: need I >= 2, O >= 2, ACT in 0..2", NAME);
            $finish;
        end
    end
`endif

    // ---- collector: one row shifted in, element 0 ends at the bottom ----
    reg [I*8-1:0]  col;
    reg [CNTW-1:0] col_cnt;
    wire           col_full = (col_cnt == I[CNTW-1:0]);

    // ---- compute register and output counter ----
    reg [I*8-1:0]  cur;
    reg            cur_valid;
    reg [OW-1:0]   o_idx;
    reg [FAW:0]    credits;          // free FIFO slots not yet claimed
    wire           pop;
    wire           issue = cur_valid && (credits != {(FAW+1){1'b0}});
    wire           last  = issue && (o_idx == O[OW-1:0] - 1'b1);
    wire           xfer  = col_full && (!cur_valid || last);
    wire           take  = in_valid && in_ready;
    assign in_ready = !col_full || xfer;

    always @(posedge clk) begin
        if (take) col <= {in_data, col[I*8-1:8]};
        if (xfer) cur <= col;
        if (rst) begin
            col_cnt   <= {CNTW{1'b0}};
            cur_valid <= 1'b0;
            o_idx     <= {OW{1'b0}};
            credits   <= 1 << FAW;
        end else begin
            col_cnt   <= (xfer ? {CNTW{1'b0}} : col_cnt) + {{(CNTW-1){1'b0}}, take};
            cur_valid <= xfer ? 1'b1 : (last ? 1'b0 : cur_valid);
            if (issue) o_idx <= last ? {OW{1'b0}} : o_idx + 1'b1;
            credits   <= credits - {{FAW{1'b0}}, issue} + {{FAW{1'b0}}, pop};
        end
    end

    // ---- stage 1: ROM reads (registered), row snapshot ----
    wire [I*8-1:0]   w1;
    wire signed [7:0] b1;
    wire [4:0]        s1;
    hex_rom #(.WIDTH(I*8), .DEPTH(O), .AW(OW), .FILE({NAME, ".W.hex"}), .HEXDIR(HEXDIR))
        rom_w (.clk(clk), .addr(o_idx), .data(w1));
    hex_rom #(.WIDTH(8), .DEPTH(O), .AW(OW), .FILE({NAME, ".b.hex"}), .HEXDIR(HEXDIR))
        rom_b (.clk(clk), .addr(o_idx), .data(b1));
    hex_rom #(.WIDTH(5), .DEPTH(O), .AW(OW), .FILE({NAME, ".s.hex"}), .HEXDIR(HEXDIR))
        rom_s (.clk(clk), .addr(o_idx), .data(s1));
    reg [I*8-1:0] x1;
    reg           v1;
    reg [OW-1:0]  o1;
    always @(posedge clk) begin
        x1 <= cur;
        o1 <= o_idx;
        v1 <= rst ? 1'b0 : issue;
    end

    // ---- stage 2: the dot product, fully unrolled over the I inputs ----
    reg signed [ACCW-1:0] dot;
    reg signed [15:0]     prod;
    integer i;
    always @* begin
        dot = {ACCW{1'b0}};
        for (i = 0; i < I; i = i + 1) begin
            prod = $signed(w1[i*8 +: 8]) * $signed(x1[i*8 +: 8]);
            dot  = dot + {{(ACCW-16){prod[15]}}, prod};
        end
    end
    reg signed [ACCW-1:0] acc2;
    reg signed [7:0]      b2;
    reg [4:0]             s2;
    reg                   v2;
    reg [OW-1:0]          o2;
    always @(posedge clk) begin
        acc2 <= dot;
        b2   <= b1;
        s2   <= s1;
        o2   <= o1;
        v2   <= rst ? 1'b0 : v1;
    end

    // ---- stage 3: shift, bias, clip (and relu8) ----
    wire signed [7:0] y2;
    requant #(.AW(ACCW), .RELU(ACT == 1 ? 1 : 0)) rq (.acc(acc2), .s(s2), .b(b2), .y(y2));
    reg signed [7:0] y3;
    reg              v3;
    reg [OW-1:0]     o3;
    always @(posedge clk) begin
        y3 <= y2;
        o3 <= o2;
        v3 <= rst ? 1'b0 : v2;
    end

    // ---- optional LERP tables on the outputs, then the FIFO ----
    wire              fin_valid;
    wire signed [7:0] fin_data;
    generate
        if (ACT == 2) begin : g_lerp
            localparam integer E   = (1 << M) + 1;
            localparam integer LAW = $clog2(O * E);
            wire [LAW-1:0]    base = o3 * E[LAW-1:0];
            wire [LAW-1:0]    ra, rb;
            wire signed [7:0] da, db;
            lut_rom #(.DEPTH(O * E), .AW(LAW), .FILE({LUT_NAME, ".hex"}), .HEXDIR(HEXDIR))
                lut (.clk(clk), .addr_a(ra), .addr_b(rb), .data_a(da), .data_b(db));
            lerp_unit #(.M(M), .AW(LAW)) unit (
                .clk(clk), .rst(rst), .in_valid(v3), .in_x(y3), .in_base(base),
                .rd_addr_a(ra), .rd_addr_b(rb), .rd_data_a(da), .rd_data_b(db),
                .out_valid(fin_valid), .out_y(fin_data));
        end else begin : g_plain
            assign fin_valid = v3;
            assign fin_data  = y3;
            wire unused_ok = &{1'b0, o3};
        end
    endgenerate

    wire fifo_in_ready;  // always high when an element arrives: the credits reserved its slot
    stream_fifo #(.W(8), .AW(FAW)) fifo (
        .clk(clk), .rst(rst),
        .in_valid(fin_valid), .in_ready(fifo_in_ready), .in_data(fin_data),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
    assign pop = out_valid && out_ready;
    wire unused_ready = fifo_in_ready;
endmodule

`default_nettype wire
