#pragma once
// The web board's files (web/board/), compiled into segx by lib/api/embed_board.py so the
// binary serves /ui wherever it runs from: the build tree, an installed prefix, a container.

#include <optional>
#include <string_view>
#include <vector>

namespace segx::api {

/// One file of the board.
struct BoardAsset {
  std::string_view name;          ///< "index.html", "board.js", ...
  std::string_view content_type;  ///< by extension
  std::string_view data;
};

/// The board file with this name; nullopt when there is none.
std::optional<BoardAsset> board_asset(std::string_view name);

/// Every board file, in name order.
std::vector<BoardAsset> board_assets();

}  // namespace segx::api
