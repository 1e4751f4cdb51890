// tab_ram: the LERP tables of one lane of the fixed-SIMD engine: one write
// port (filled from the memory port) and the two synchronous read ports a
// lerp_unit needs (entries hi and hi + 1). On an FPGA: two copies of a
// simple dual-port RAM, or LUT RAM.
//
// Parameters
//   DEPTH  entries (tables x (2^M + 1)), >= 1
//   AW     address width, 2^AW >= DEPTH
//
// Ports
//   clk               clock
//   we, waddr, wdata  write one signed 8-bit entry
//   addr_a, addr_b    read addresses
//   data_a, data_b    the entries at the addresses of one clock earlier

`default_nettype none

module tab_ram #(
    parameter integer DEPTH = 390,
    parameter integer AW    = 9
) (
    input  wire              clk,
    input  wire              we,
    input  wire [AW-1:0]     waddr,
    input  wire [7:0]        wdata,
    input  wire [AW-1:0]     addr_a,
    input  wire [AW-1:0]     addr_b,
    output reg  signed [7:0] data_a,
    output reg  signed [7:0] data_b
);
    reg [7:0] mem [0:DEPTH-1];
    always @(posedge clk) begin
        if (we) mem[waddr] <= wdata;
        data_a <= mem[addr_a];
        data_b <= mem[addr_b];
    end
endmodule

`default_nettype wire
