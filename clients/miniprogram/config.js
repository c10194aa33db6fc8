// The hall this mini-program talks to (an https domain listed in the
// mini-program's request and socket domains; the simulator's hall in dev).
module.exports = { BASE: "https://auction.example.com" };
