// mem_reader: one sequential read stream of the fixed-SIMD engine through
// the external memory port, requested in bursts and delivered as TW-byte
// words.
//
// On start it reads BEATS beats from BASE (a beat is PB bytes). It asks for
// bursts of up to BL beats: a burst never runs past the end of the stream
// nor across a 4 KB boundary of the byte address (AXI4: no burst may cross
// one; a burst that would is cut at the boundary and the next one starts
// there). A burst is requested only while the beat FIFO holds a reserved
// slot for each of its beats (a credit counter: slots are reserved when the
// burst is granted and come back as words are taken), so however long the
// memory takes, every beat of a granted burst finds room: the consumer of
// the responses never has to stall the memory, and up to 2^FAW beats are in
// flight (the memory latency is hidden when 2^FAW exceeds the latency plus a
// burst). The beats are cut into (PB > TW) or assembled from (PB < TW)
// words of TW bytes, byte 0 of a word being the lowest address.
//
// Parameters
//   PB    bytes per memory beat (port width), a power of two, <= 4096
//   TW    bytes per output word, a power of two
//   BAW   beat-address width
//   FAW   log2 of the beat FIFO depth, >= 1
//   BL    largest burst in beats, 1 .. min(256, 2^FAW)
//
// Ports
//   clk, rst       clock; synchronous active-high reset
//   start          begin a new stream (pointer loaded, FIFO emptied); no
//                  response of the previous stream may be in flight (the
//                  previous stream has been read to its end)
//   base, beats    the stream: first beat address and length in beats
//   req            a burst is wanted (depends on registers only)
//   addr, len      its first beat and its length in beats minus one (AXI ARLEN)
//   gnt            the port takes the burst this clock
//   resp_valid, resp_data   the next beat of the granted bursts returns (PB bytes)
//   out_valid, out_ready, out_data   the words, in address order
//   err            sticky: a beat found its FIFO full, or more beats were granted
//                  than reserved (neither happens when the port keeps the rules)

`default_nettype none

module mem_reader #(
    parameter integer PB  = 16,
    parameter integer TW  = 16,
    parameter integer BAW = 20,
    parameter integer FAW = 6,
    parameter integer BL  = 16
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             start,
    input  wire [BAW-1:0]   base,
    input  wire [BAW-1:0]   beats,
    output wire             req,
    output wire [BAW-1:0]   addr,
    output wire [7:0]       len,
    input  wire             gnt,
    input  wire             resp_valid,
    input  wire [PB*8-1:0]  resp_data,
    output wire             out_valid,
    input  wire             out_ready,
    output wire [TW*8-1:0]  out_data,
    output reg              err
);
    localparam integer PGW = $clog2(4096 / PB);        // beat-address bits within a 4 KB page
    localparam integer NW  = (BAW > 9 ? BAW : 9) + 1;  // width of the burst-size arithmetic
    localparam [NW-1:0] PAGE = 1 << PGW;                // beats per 4 KB page
    localparam [NW-1:0] BLN  = BL[NW-1:0];

`ifndef SYNTHESIS
    initial begin
        if (BL < 1 || BL > 256 || BL > (1 << FAW) || PB > 4096 || PGW > BAW) begin
            $display("mem_reader: need 1 <= BL <= min(256, 2^FAW), PB <= 4096 and 4096 / PB <= 2^BAW");
            $finish;
        end
    end
`endif

    reg [BAW-1:0] ptr, left;
    always @(posedge clk) begin
        if (rst) begin
            left <= {BAW{1'b0}};
        end else if (start) begin
            ptr  <= base;
            left <= beats;
        end else if (gnt) begin
            ptr  <= ptr + n[BAW-1:0];
            left <= left - n[BAW-1:0];
        end
    end

    // the burst: min(BL, beats left, beats to the next 4 KB boundary)
    wire [NW-1:0] to_page = PAGE - {{(NW-PGW){1'b0}}, ptr[PGW-1:0]};
    wire [NW-1:0] left_w  = {{(NW-BAW){1'b0}}, left};
    wire [NW-1:0] n_bl    = (left_w < BLN) ? left_w : BLN;
    wire [NW-1:0] n       = (to_page < n_bl) ? to_page : n_bl;

    // credits: free FIFO slots not yet reserved by a granted burst
    reg  [FAW:0] credits;
    wire         pop_beat;
    wire         enough = ({{(NW-FAW-1){1'b0}}, credits} >= n);
    assign req  = (left != {BAW{1'b0}}) && enough;
    assign addr = ptr;
    assign len  = n[7:0] - 8'd1;
    wire unused_n = &{1'b0, n[NW-1:8]};

    wire            b_valid, b_ready, f_in_ready;
    wire [PB*8-1:0] b_data;
    wire bad = (resp_valid && !f_in_ready) || (gnt && !enough);
    always @(posedge clk) begin
        if (rst || start)
            credits <= 1 << FAW;
        else
            credits <= credits - (gnt ? n[FAW:0] : {(FAW+1){1'b0}}) + {{FAW{1'b0}}, pop_beat};
        if (rst) err <= 1'b0;
        else if (!start && bad) err <= 1'b1;
    end
`ifndef SYNTHESIS
    always @(posedge clk)
        if (!rst && !start && !err && bad)
            $display("ERROR %m: %0s", (resp_valid && !f_in_ready) ? "a beat found the FIFO full"
                                                                   : "a burst granted without credits");
`endif
    stream_fifo #(.W(PB * 8), .AW(FAW)) fifo (
        .clk(clk), .rst(rst || start), .in_valid(resp_valid), .in_ready(f_in_ready),
        .in_data(resp_data), .out_valid(b_valid), .out_ready(b_ready), .out_data(b_data));
    assign pop_beat = b_valid && b_ready;

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
            reg [RW-1:0]         k;                   // how many of them are held
            wire                 full = (k == R[RW-1:0] - 1'b1);
            always @(posedge clk) begin
                if (rst || start) begin
                    k <= {RW{1'b0}};
                end else if (b_valid && !full) begin
                    got[k*PB*8 +: PB*8] <= b_data;
                    k <= k + 1'b1;
                end else if (b_valid && full && out_ready) begin
                    k <= {RW{1'b0}};
                end
            end
            assign out_valid = b_valid && full;
            assign out_data  = {b_data, got};
            assign b_ready   = !full || out_ready;
        end
    endgenerate
endmodule

`default_nettype wire
