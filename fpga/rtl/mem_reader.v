// mem_reader: one sequential read stream of the fixed-SIMD engine through
// the external memory port, delivered as TW-byte words.
//
// On start it reads BEATS0 beats from BASE0, then BEATS1 beats from BASE1
// (a beat is PB bytes, one memory request), requesting one beat per clock
// while it is granted the port and has room: every request claims a slot
// of its beat FIFO (credit_fifo), so however long the memory takes, a
// response always finds room, and up to 2^FAW requests are in flight (the
// memory latency is hidden when 2^FAW exceeds it). The beats are cut into
// (PB > TW) or assembled from (PB < TW) words of TW bytes, byte 0 of a word
// being the lowest address.
//
// Parameters
//   PB    bytes per memory beat (port width), a power of two
//   TW    bytes per output word, a power of two
//   BAW   beat-address width
//   FAW   log2 of the beat FIFO depth, >= 1
//
// Ports
//   clk, rst       clock; synchronous active-high reset
//   start          begin a new stream (pointers loaded, FIFO emptied); no
//                  response of the previous stream may be in flight
//   base0, beats0  first segment: beat address and length in beats
//   base1, beats1  second segment
//   req, addr      a request for the beat at addr is wanted this clock
//   gnt            the port takes the request this clock
//   resp_valid, resp_data   the oldest outstanding beat returns (PB bytes)
//   out_valid, out_ready, out_data   the words, in address order
//   err            sticky: a response found its FIFO full (see credit_fifo)

`default_nettype none

module mem_reader #(
    parameter integer PB  = 16,
    parameter integer TW  = 16,
    parameter integer BAW = 20,
    parameter integer FAW = 6
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             start,
    input  wire [BAW-1:0]   base0,
    input  wire [BAW-1:0]   beats0,
    input  wire [BAW-1:0]   base1,
    input  wire [BAW-1:0]   beats1,
    output wire             req,
    output wire [BAW-1:0]   addr,
    input  wire             gnt,
    input  wire             resp_valid,
    input  wire [PB*8-1:0]  resp_data,
    output wire             out_valid,
    input  wire             out_ready,
    output wire [TW*8-1:0]  out_data,
    output wire             err
);
    reg [BAW-1:0] ptr, left, next_base, next_left;
    reg           seg1_pending;
    always @(posedge clk) begin
        if (rst) begin
            left         <= {BAW{1'b0}};
            seg1_pending <= 1'b0;
        end else if (start) begin
            ptr          <= base0;
            left         <= beats0;
            next_base    <= base1;
            next_left    <= beats1;
            seg1_pending <= 1'b1;
        end else if (left == {BAW{1'b0}} && seg1_pending) begin
            ptr          <= next_base;
            left         <= next_left;
            seg1_pending <= 1'b0;
        end else if (gnt) begin
            ptr  <= ptr + 1'b1;
            left <= left - 1'b1;
        end
    end

    wire can_claim;
    assign req  = !start && (left != {BAW{1'b0}}) && can_claim;
    assign addr = ptr;

    wire            b_valid;
    wire            b_ready;
    wire [PB*8-1:0] b_data;
    credit_fifo #(.W(PB * 8), .AW(FAW)) fifo (
        .clk(clk), .rst(rst || start), .claim(gnt), .can_claim(can_claim),
        .in_valid(resp_valid), .in_data(resp_data),
        .out_valid(b_valid), .out_ready(b_ready), .out_data(b_data), .err(err));

    generate
        if (PB == TW) begin : g_same
            assign out_valid = b_valid;
            assign out_data  = b_data;
            assign b_ready   = out_ready;
        end else if (PB > TW) begin : g_cut
            localparam integer R  = PB / TW;          // words per beat
            localparam integer RW = $clog2(R);
            reg [RW-1:0] m;
            always @(posedge clk) begin
                if (rst || start) m <= {RW{1'b0}};
                else if (b_valid && out_ready) m <= m + 1'b1;   // wraps after the last word
            end
            assign out_valid = b_valid;
            assign out_data  = b_data[m*TW*8 +: TW*8];
            assign b_ready   = out_ready && (m == R[RW-1:0] - 1'b1);
        end else begin : g_join
            localparam integer R  = TW / PB;          // beats per word
            localparam integer RW = $clog2(R);
            reg [(R-1)*PB*8-1:0] got;                 // the word's first R - 1 beats
            reg [RW-1:0]         n;                   // how many of them are held
            wire                 full = (n == R[RW-1:0] - 1'b1);
            always @(posedge clk) begin
                if (rst || start) begin
                    n <= {RW{1'b0}};
                end else if (b_valid && !full) begin
                    got[n*PB*8 +: PB*8] <= b_data;
                    n <= n + 1'b1;
                end else if (b_valid && full && out_ready) begin
                    n <= {RW{1'b0}};
                end
            end
            assign out_valid = b_valid && full;
            assign out_data  = {b_data, got};
            assign b_ready   = !full || out_ready;
        end
    endgenerate
endmodule

`default_nettype wire
