// lerp_lane: one pipelined 8-bit LERP evaluation with its own per-feature
// tables (docs/METHOD.md section 9): a two-port table ROM (hex_rom) and one
// lerp_unit, for stages whose elements carry their feature index.
//
//   y = lerp8(x, lut[f])
//
// Latency 4 clocks (lerp_unit); valid and a side band of SW bits travel
// along. The tables file holds F * (2^M + 1) entries, feature-major (see
// fpga/README.md, "Parameter files").
//
// Parameters
//   F       features (tables), >= 1
//   M       table address bits, 1..7 (2^M + 1 entries per table)
//   FILE    table file inside the hex folder, e.g. "blocks.0.mlp.lut1.hex"
//   HEXDIR  hex folder used when no +hexdir= plusarg is given (synthesis)
//   SW      side-band width, >= 1
//
// Ports
//   clk, rst    clock; synchronous active-high reset (clears the valid pipe)
//   in_valid    in_x is an element
//   in_x        signed 8-bit code
//   in_f        its feature, 0..F-1
//   in_side     carried along unchanged
//   out_valid   out_y is the result of the element presented 4 clocks earlier
//   out_y       signed 8-bit result
//   out_side    its side band

`default_nettype none

module lerp_lane #(
    parameter integer F      = 96,
    parameter integer M      = 6,
    parameter         FILE   = "lut.hex",
    parameter         HEXDIR = ".",
    parameter integer SW     = 1
) (
    input  wire                                clk,
    input  wire                                rst,
    input  wire                                in_valid,
    input  wire signed [7:0]                   in_x,
    input  wire [((F > 1) ? $clog2(F) : 1)-1:0] in_f,
    input  wire [SW-1:0]                       in_side,
    output wire                                out_valid,
    output wire signed [7:0]                   out_y,
    output wire [SW-1:0]                       out_side
);
    localparam integer E   = (1 << M) + 1;
    localparam integer LAW = $clog2(F * E + 1);
    localparam integer FW  = (F > 1) ? $clog2(F) : 1;

    wire [LAW-1:0] base = {{(LAW-FW){1'b0}}, in_f} * E[LAW-1:0];
    wire [LAW-1:0] ra, rb;
    wire [15:0]    rd;
    hex_rom #(.WIDTH(8), .DEPTH(F * E), .AW(LAW), .PORTS(2), .FILE(FILE), .HEXDIR(HEXDIR)) lut (
        .clk(clk), .addr({rb, ra}), .data(rd));
    lerp_unit #(.M(M), .AW(LAW)) unit (
        .clk(clk), .rst(rst), .in_valid(in_valid), .in_x(in_x), .in_base(base),
        .rd_addr_a(ra), .rd_addr_b(rb), .rd_data_a(rd[7:0]), .rd_data_b(rd[15:8]),
        .out_valid(out_valid), .out_y(out_y));
    pipe_delay #(.W(SW), .D(4), .RST(0)) ds (.clk(clk), .rst(rst), .d(in_side), .q(out_side));
endmodule

`default_nettype wire
