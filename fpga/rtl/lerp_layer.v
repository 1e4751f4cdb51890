// lerp_layer: per-feature 8-bit LERP tables applied to a stream of activations.
//
// Element n of the stream belongs to feature n mod F (features in order,
// repeating). Each feature has its own (2^M + 1)-entry signed 8-bit table;
// all tables sit in one ROM, feature-major, loaded with $readmemh (one
// two's-complement byte per line: feature 0's entries 0..2^M, then feature
// 1's, ...) from the file named by the plusarg +tables=PATH in simulation
// (read at run time, so a simulator holds no path), else from TABLE_FILE
// (synthesis). One lerp_unit evaluates the stream: one
// element per clock in and, after 4 cycles of latency, one result per clock
// out. There is no back-pressure; in_valid may drop at any cycle (bubbles
// pass through the pipeline and keep the feature count).
//
// Parameters
//   F           number of features, >= 1
//   M           table address bits per feature, 1..7
//   TABLE_FILE  $readmemh file with F * (2^M + 1) entries, used without the
//               +tables= plusarg and in synthesis
//
// Ports
//   clk        clock, all registers on its rising edge
//   rst        synchronous active-high reset: feature count back to 0, pipeline emptied
//   in_valid   in_x carries an element this cycle
//   in_x       signed 8-bit input code
//   out_valid  out_y carries a result this cycle (4 cycles after its input)
//   out_y      signed 8-bit result

`default_nettype none

module lerp_layer #(
    parameter integer F          = 96,
    parameter integer M          = 6,
    parameter         TABLE_FILE = "tables.hex"
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              in_valid,
    input  wire signed [7:0] in_x,
    output wire              out_valid,
    output wire signed [7:0] out_y
);
    localparam integer E     = (1 << M) + 1;           // entries per feature
    localparam integer DEPTH = F * E;
    localparam integer AW    = (DEPTH > 2) ? $clog2(DEPTH) : 1;
    localparam integer FW    = (F > 1) ? $clog2(F) : 1;

    reg signed [7:0] rom [0:DEPTH-1];
`ifdef SYNTHESIS
    initial $readmemh(TABLE_FILE, rom);
`else
    reg [8*1024-1:0] table_path;  // the +tables= plusarg, at most 1024 characters
    initial begin
        if ($value$plusargs("tables=%s", table_path)) $readmemh(table_path, rom);
        else $readmemh(TABLE_FILE, rom);
    end
`endif

    // Feature of the current element and the address of its entry 0,
    // advanced on every accepted element.
    reg [FW-1:0] feature;
    reg [AW-1:0] base;
    always @(posedge clk) begin
        if (rst) begin
            feature <= {FW{1'b0}};
            base    <= {AW{1'b0}};
        end else if (in_valid) begin
            if (feature == F[FW-1:0] - 1'b1 || F == 1) begin
                feature <= {FW{1'b0}};
                base    <= {AW{1'b0}};
            end else begin
                feature <= feature + 1'b1;
                base    <= base + E[AW-1:0];
            end
        end
    end

    wire [AW-1:0]    rd_addr_a, rd_addr_b;
    reg signed [7:0] rd_data_a, rd_data_b;
    // Two-port ROM with a one-cycle synchronous read (block RAM friendly).
    always @(posedge clk) begin
        rd_data_a <= rom[rd_addr_a];
        rd_data_b <= rom[rd_addr_b];
    end

    lerp_unit #(.M(M), .AW(AW)) unit (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_x(in_x), .in_base(base),
        .rd_addr_a(rd_addr_a), .rd_addr_b(rd_addr_b),
        .rd_data_a(rd_data_a), .rd_data_b(rd_data_b),
        .out_valid(out_valid), .out_y(out_y)
    );
endmodule

`default_nettype wire
