// ew_stage: an element-wise layer on a stream of rows of F channels
// (element n of the stream belongs to channel n mod F):
//
//   MODE 1, affine:  y = clip8(rshift(x * w[c], s[c]) + b[c])
//   MODE 2, LERP:    y = lerp8(x, lut[c])  (docs/METHOD.md section 9, via lerp_unit)
//
// One element per clock; the results leave through a FIFO of 2^FAW codes
// guarded by a credit counter (no element is ever dropped). A deep FIFO
// (large FAW) lets this stage hold a residual branch while the other branch
// of a block is still computing.
//
// Parameter files (see fpga/README.md): MODE 1 reads <NAME>.w.hex,
// <NAME>.b.hex, <NAME>.s.hex (F lines each); MODE 2 reads <NAME>.hex
// (F * (2^M + 1) entries, channel-major).
//
// Parameters
//   F       channels, >= 2
//   MODE    1: affine, 2: LERP tables
//   M       table address bits for MODE 2 (1..7)
//   NAME    tensor name, e.g. "blocks.0.mlp.res" or "blocks.0.mlp.lut1"
//   HEXDIR  hex folder when no +hexdir= plusarg is given (synthesis)
//   FAW     log2 of the output FIFO depth (>= 3 keeps one element per clock)
//
// Ports (valid/ready streams of signed 8-bit codes)
//   clk, rst   clock and synchronous active-high reset (channel count to 0)
//   in_valid, in_ready, in_data     input elements
//   out_valid, out_ready, out_data  output elements, same order

`default_nettype none

module ew_stage #(
    parameter integer F      = 96,
    parameter integer MODE   = 1,
    parameter integer M      = 6,
    parameter         NAME   = "res",
    parameter         HEXDIR = ".",
    parameter integer FAW    = 3
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
    localparam integer CW = $clog2(F);

    reg [CW-1:0] c;             // channel of the next input element
    reg [FAW:0]  credits;
    wire         pop;
    assign in_ready = (credits != {(FAW+1){1'b0}});
    wire   take     = in_valid && in_ready;
    always @(posedge clk) begin
        if (rst) begin
            c       <= {CW{1'b0}};
            credits <= 1 << FAW;
        end else begin
            if (take) c <= (c == F[CW-1:0] - 1'b1) ? {CW{1'b0}} : c + 1'b1;
            credits <= credits - {{FAW{1'b0}}, take} + {{FAW{1'b0}}, pop};
        end
    end

    wire              fin_valid;
    wire signed [7:0] fin_data;
    generate
        if (MODE == 2) begin : g_lerp
            localparam integer E   = (1 << M) + 1;
            localparam integer LAW = $clog2(F * E);
            wire [LAW-1:0]    base = c * E[LAW-1:0];
            wire [LAW-1:0]    ra, rb;
            wire signed [7:0] da, db;
            lut_rom #(.DEPTH(F * E), .AW(LAW), .FILE({NAME, ".hex"}), .HEXDIR(HEXDIR))
                lut (.clk(clk), .addr_a(ra), .addr_b(rb), .data_a(da), .data_b(db));
            lerp_unit #(.M(M), .AW(LAW)) unit (
                .clk(clk), .rst(rst), .in_valid(take), .in_x(in_data), .in_base(base),
                .rd_addr_a(ra), .rd_addr_b(rb), .rd_data_a(da), .rd_data_b(db),
                .out_valid(fin_valid), .out_y(fin_data));
        end else begin : g_affine
            wire signed [7:0] w1, b1;
            wire [4:0]        s1;
            hex_rom #(.WIDTH(8), .DEPTH(F), .AW(CW), .FILE({NAME, ".w.hex"}), .HEXDIR(HEXDIR))
                rom_w (.clk(clk), .addr(c), .data(w1));
            hex_rom #(.WIDTH(8), .DEPTH(F), .AW(CW), .FILE({NAME, ".b.hex"}), .HEXDIR(HEXDIR))
                rom_b (.clk(clk), .addr(c), .data(b1));
            hex_rom #(.WIDTH(5), .DEPTH(F), .AW(CW), .FILE({NAME, ".s.hex"}), .HEXDIR(HEXDIR))
                rom_s (.clk(clk), .addr(c), .data(s1));
            reg signed [7:0] x1;
            reg              v1;
            always @(posedge clk) begin
                x1 <= in_data;
                v1 <= rst ? 1'b0 : take;
            end
            wire signed [15:0] p1 = x1 * w1;
            wire signed [7:0]  y1;
            requant #(.AW(16), .RELU(0)) rq (.acc(p1), .s(s1), .b(b1), .y(y1));
            reg signed [7:0] y2;
            reg              v2;
            always @(posedge clk) begin
                y2 <= y1;
                v2 <= rst ? 1'b0 : v1;
            end
            assign fin_valid = v2;
            assign fin_data  = y2;
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
