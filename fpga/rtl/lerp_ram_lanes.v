// lerp_ram_lanes: TW parallel 8-bit LERP lanes of the fixed-SIMD engine
// (docs/METHOD.md section 9), each with its own table RAM filled from the
// engine's memory port. Lane i evaluates
//
//   out_y[i] = lerp8(in_x[i], table in_table of lane i)
//
// for the TW channels of one chunk at a time: a lane holds TABLES tables of
// 2^M + 1 signed 8-bit entries (table t at entries t * (2^M + 1) ...), one
// per chunk of channels, written one entry per lane per clock (we, waddr,
// wdata) before the op that reads them. Latency 4 clocks (lerp_unit); the
// caller delays its valid and side band to match.
//
// Parameters
//   TW      lanes, >= 1
//   M       table address bits, 1..7 (2^M + 1 entries per table)
//   TABLES  tables per lane, >= 1
//   CW      width of the table index in_table, >= 1, 2^CW > TABLES - 1
//   RA      width of the write address waddr, >= the table RAM's address width
//
// Ports
//   clk, rst    clock; synchronous active-high reset (the lerp_units' valid pipes)
//   we          write wdata's TW entries (one per lane) at waddr this clock
//   waddr       entry within each lane's RAM (only the low bits the RAM needs are used)
//   wdata       TW signed 8-bit entries, lane i in bits [8i+7:8i]
//   in_valid    in_x holds TW codes to evaluate
//   in_x        TW signed 8-bit codes, lane i in bits [8i+7:8i]
//   in_table    which table of every lane to read (the channel chunk)
//   out_y       the TW results of the codes presented 4 clocks earlier

`default_nettype none

module lerp_ram_lanes #(
    parameter integer TW     = 16,
    parameter integer M      = 6,
    parameter integer TABLES = 6,
    parameter integer CW     = 3,
    parameter integer RA     = 10
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             we,
    input  wire [RA-1:0]    waddr,
    input  wire [TW*8-1:0]  wdata,
    input  wire             in_valid,
    input  wire [TW*8-1:0]  in_x,
    input  wire [CW-1:0]    in_table,
    output wire [TW*8-1:0]  out_y
);
    localparam integer E   = (1 << M) + 1;
    localparam integer TD  = TABLES * E;
    localparam integer TAW = $clog2(TD + 1);

    wire [TAW-1:0] base = {{(TAW-CW){1'b0}}, in_table} * E[TAW-1:0];

    genvar g;
    generate
        if (RA > TAW) begin : g_hi
            wire unused_hi = &{1'b0, waddr[RA-1:TAW]};
        end
        for (g = 0; g < TW; g = g + 1) begin : lane
            wire [TAW-1:0]    ra, rb;
            wire signed [7:0] da, db;
            wire              lv;
            tab_ram #(.DEPTH(TD), .AW(TAW)) tab (
                .clk(clk), .we(we), .waddr(waddr[TAW-1:0]), .wdata(wdata[g*8 +: 8]),
                .addr_a(ra), .addr_b(rb), .data_a(da), .data_b(db));
            lerp_unit #(.M(M), .AW(TAW)) unit (
                .clk(clk), .rst(rst), .in_valid(in_valid), .in_x(in_x[g*8 +: 8]),
                .in_base(base), .rd_addr_a(ra), .rd_addr_b(rb), .rd_data_a(da), .rd_data_b(db),
                .out_valid(lv), .out_y(out_y[g*8 +: 8]));
            wire unused_lv = &{1'b0, lv};
        end
    endgenerate
endmodule

`default_nettype wire
