-- Close one lot (see close_lot in common.lua).
-- KEYS: 1 lot hash, 2 lot stream, 3 deadline zset (declared; close_lot names them)
-- ARGV: 1 lot id, 2 force ('1' = hammer), 3 stream maxlen
return cjson.encode(close_lot(ARGV[1], ARGV[2] == '1', KEYS[3], ARGV[3]))
