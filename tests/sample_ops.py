"""A small CSV file of operations (docs/MATCHING.md, "Replay
files") that every kind of operation and outcome reaches: rests,
fills, a reduce, cancels (one of an unknown order), an unfillable FOK, a
post-only that would cross, a market order.  Tests that prove and verify
files through the command line share it."""

CSV = """ts_ns,kind,side,price,qty,account,order_id
0,LIMIT,SELL,101,5,1,1
1,LIMIT,SELL,100,5,2,2
2,LIMIT,BUY,99,3,3,3
3,IOC,BUY,101,7,4,4
4,REDUCE,,,1,,1
5,CANCEL,,,,,3
6,FOK,SELL,99,50,5,5
7,POST_ONLY,BUY,101,1,6,6
8,MARKET,SELL,,2,7,7
9,CANCEL,,,,,42
"""
