// affine_rom: the parameter ROMs of one per-channel affine layer
// (docs/METHOD.md section 10): w, b and s of channel c, read in one clock
// from <NAME>.w.hex, <NAME>.b.hex, <NAME>.s.hex (C lines each, see
// fpga/README.md, "Parameter files").
//
// Parameters
//   C       channels, >= 2
//   NAME    tensor name, e.g. "blocks.0.tm.aff1"
//   HEXDIR  hex folder used when no +hexdir= plusarg is given (synthesis)
//
// Ports
//   clk       clock; the outputs are registered on its rising edge
//   addr      channel, 0..C-1
//   w, b, s   its weight, bias and shift (one clock after addr)

`default_nettype none

module affine_rom #(
    parameter integer C      = 96,
    parameter         NAME   = "res",
    parameter         HEXDIR = "."
) (
    input  wire                 clk,
    input  wire [$clog2(C)-1:0] addr,
    output wire signed [7:0]    w,
    output wire signed [7:0]    b,
    output wire [4:0]           s
);
    localparam integer CW = $clog2(C);
    wire [7:0] s8;
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".w.hex"}), .HEXDIR(HEXDIR))
        rom_w (.clk(clk), .addr(addr), .data(w));
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".b.hex"}), .HEXDIR(HEXDIR))
        rom_b (.clk(clk), .addr(addr), .data(b));
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".s.hex"}), .HEXDIR(HEXDIR))
        rom_s (.clk(clk), .addr(addr), .data(s8));
    assign s = s8[4:0];
    wire unused_ok = &{1'b0, s8[7:5]};   // shifts are 0..31
endmodule

`default_nettype wire
