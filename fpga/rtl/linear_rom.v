// linear_rom: the parameter ROMs of one Linear layer (docs/METHOD.md
// section 10), read one output group at a time: the weight rows, biases and
// shifts of LO consecutive outputs g*LO .. g*LO+LO-1 in one clock.
//
// Files (fpga/README.md, "Parameter files"; fpga/hexdump.py writes them):
//   LO = 1:  <NAME>.W.hex, <NAME>.b.hex, <NAME>.s.hex  (one output per line)
//   LO > 1:  <NAME>.W.x<LO>.hex, <NAME>.b.x<LO>.hex, <NAME>.s.x<LO>.hex
//            (LO outputs per line, the highest output first)
// Output k of the group is in bits [k*I*8 +: I*8] of w (weight i of that row
// in the byte [8i +: 8]), [k*8 +: 8] of b and [k*5 +: 5] of s.
//
// Parameters
//   I       inputs of the layer (weights per row), >= 1
//   O       outputs of the layer, a multiple of LO
//   LO      outputs read per clock, >= 1
//   NAME    tensor name, e.g. "blocks.0.mlp.lin1"
//   HEXDIR  hex folder used when no +hexdir= plusarg is given (synthesis)
//
// Ports
//   clk    clock; the outputs are registered on its rising edge
//   addr   output group g, 0..O/LO-1
//   w, b, s  the group's weight rows, biases and shifts (read one clock after addr)

`default_nettype none

module linear_rom #(
    parameter integer I      = 96,
    parameter integer O      = 96,
    parameter integer LO     = 1,
    parameter         NAME   = "embed",
    parameter         HEXDIR = "."
) (
    input  wire                                      clk,
    input  wire [((O / LO > 1) ? $clog2(O / LO) : 1)-1:0] addr,
    output wire [LO*I*8-1:0]                         w,
    output wire [LO*8-1:0]                           b,
    output wire [LO*5-1:0]                           s
);
    localparam integer NG = O / LO;
    localparam integer GW = (NG > 1) ? $clog2(NG) : 1;

    wire [LO*8-1:0] s8;     // shifts as stored: one byte each, 0..31
    generate
        if (LO == 1) begin : g_one
            hex_rom #(.WIDTH(I*8), .DEPTH(NG), .AW(GW), .FILE({NAME, ".W.hex"}), .HEXDIR(HEXDIR))
                rom_w (.clk(clk), .addr(addr), .data(w));
            hex_rom #(.WIDTH(8), .DEPTH(NG), .AW(GW), .FILE({NAME, ".b.hex"}), .HEXDIR(HEXDIR))
                rom_b (.clk(clk), .addr(addr), .data(b));
            hex_rom #(.WIDTH(8), .DEPTH(NG), .AW(GW), .FILE({NAME, ".s.hex"}), .HEXDIR(HEXDIR))
                rom_s (.clk(clk), .addr(addr), .data(s8));
        end else begin : g_group
            // LO in decimal, without leading zeros, for the file names
            localparam integer DL = (LO >= 100) ? 3 : (LO >= 10) ? 2 : 1;
            localparam [23:0]  D3 = {8'd48 + LO[7:0] / 8'd100, 8'd48 + (LO[7:0] / 8'd10) % 8'd10,
                                     8'd48 + LO[7:0] % 8'd10};
            localparam [8*DL-1:0] DS = D3[8*DL-1:0];
            hex_rom #(.WIDTH(LO*I*8), .DEPTH(NG), .AW(GW), .FILE({NAME, ".W.x", DS, ".hex"}),
                      .HEXDIR(HEXDIR)) rom_w (.clk(clk), .addr(addr), .data(w));
            hex_rom #(.WIDTH(LO*8), .DEPTH(NG), .AW(GW), .FILE({NAME, ".b.x", DS, ".hex"}),
                      .HEXDIR(HEXDIR)) rom_b (.clk(clk), .addr(addr), .data(b));
            hex_rom #(.WIDTH(LO*8), .DEPTH(NG), .AW(GW), .FILE({NAME, ".s.x", DS, ".hex"}),
                      .HEXDIR(HEXDIR)) rom_s (.clk(clk), .addr(addr), .data(s8));
        end
    endgenerate

    genvar k;
    generate
        for (k = 0; k < LO; k = k + 1) begin : g_s
            assign s[k*5 +: 5] = s8[k*8 +: 5];
            wire unused_ok = &{1'b0, s8[k*8+5 +: 3]};   // shifts are 0..31
        end
    endgenerate
endmodule

`default_nettype wire
